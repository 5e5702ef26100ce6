#!/usr/bin/env bash
# The KubeVirt examples (examples/kubevirt/*.yaml) against the test control plane:
#   1. installs this directory's stand-in CRDs (crds/: KubeVirt v1.9.0's VirtualMachine and Multus
#      v4.3.0's NetworkAttachmentDefinition, subsets written for these tests) and waits until they
#      are Established and served; the strata.io CRDs come from the fixture strata_crds;
#   2. validates every example server-side in a fresh namespace (kubectl apply --dry-run=server):
#      each must be accepted, and no field it sets may have been pruned (a field the schema does not
#      know is dropped silently by the apiserver, not rejected: a typo would otherwise pass);
#   3. checks the examples' references to each other (disk -> volume -> PVC, interface -> network ->
#      NetworkAttachmentDefinition, the VirtualNetworkConfig's VM, MAC, VLAN and resource, the
#      policies' selectors, the PVC's StorageClass in the chart's values), which no schema can;
#   4. proves the schemas bite: broken variants of the VM and the NetworkAttachmentDefinition
#      (disk bus ide2, two bindings on one interface, runStrategy Sometimes, a persistentVolumeClaim
#      without claimName, spec.config not a string, ...) are each rejected with the field named;
#   5. deletes its namespace and the CRDs it installed, and waits (boundedly) for them to go.
#
# Usage: manifests_test.sh KUBECONFIG
# Refuses to touch a VirtualMachine or NetworkAttachmentDefinition CRD that is not its own fixture
# (label strata.io/test-fixture=kubevirt), e.g. a real KubeVirt's. Prints PASS/FAIL per check and
# "N passed, N failed"; exits 1 if anything failed.
set -uo pipefail

if (($# != 1)); then
  echo "usage: $0 KUBECONFIG" >&2
  exit 2
fi
export KUBECONFIG=$1
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=../lib/assert.sh
. "$repo/tests/lib/assert.sh"

readonly kCrdDir="$here/crds"
readonly kExampleDir="$repo/examples/kubevirt"
readonly kValues="$repo/charts/strata/values.yaml"
readonly kFixtureLabel=strata.io/test-fixture
readonly kFixtureValue=kubevirt
readonly kNamespacePrefix=strata-kubevirt-test-
# What each group must serve before anything is applied (strata.io: from the fixture strata_crds).
readonly kServedPaths=(/apis/kubevirt.io/v1/virtualmachines
  /apis/k8s.cni.cncf.io/v1/network-attachment-definitions
  /apis/strata.io/v1alpha1/virtualnetworkconfigs /apis/strata.io/v1alpha1/bandwidthpolicies
  /apis/strata.io/v1alpha1/tieringpolicies /apis/strata.io/v1alpha1/deduppolicies)
# One example of each kind is expected in examples/kubevirt.
readonly kKinds=(PersistentVolumeClaim NetworkAttachmentDefinition VirtualMachine
  VirtualNetworkConfig BandwidthPolicy TieringPolicy DedupPolicy)

run_id=$(head -c4 /dev/urandom | od -An -tx1 | tr -d ' \n')
ns=$kNamespacePrefix$run_id
work=$(mktemp -d /tmp/strata-kubevirt-test.XXXXXX)
mkdir -p "$work/in" "$work/out"

# --validate=false everywhere: kubectl would otherwise check objects against the schemas itself
# (a 1.20 apiserver has no server-side field validation to defer to); what is under test is the
# apiserver's validation. A private discovery cache: the CRDs come and go between runs.
kc() { kubectl --request-timeout=30s --cache-dir="$work/kube-cache" "$@"; }
quiet() { "$@" >/dev/null; }
# YAML file (one document) -> JSON on stdout.
yaml_to_json() {
  python3 -c '
import json, sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d is not None]
if len(docs) != 1:
    sys.exit("%s: %d documents, expected 1" % (sys.argv[1], len(docs)))
print(json.dumps(docs[0]))' "$1"
}

# ---------------------------------------------------------------------------------------------------
# Cleanup: the namespace, then the CRDs this run installed. Run by the last section, and by the
# EXIT trap if the run stops early.
installed_crds=()
# A namespace deleted on a control plane without kube-controller-manager stays Terminating: the dry
# runs created nothing in it, so finalize it as the namespace controller would.
delete_namespace() {
  kc delete namespace "$1" --wait=false --ignore-not-found >/dev/null 2>&1 || return 0
  kc get namespace "$1" -o json 2>/dev/null | jq '.spec.finalizers = []' |
    kc replace --raw "/api/v1/namespaces/$1/finalize" -f - >/dev/null 2>&1 || true
}
namespace_gone() { ! kc get namespace "$1" >/dev/null 2>&1; }
crd_gone() { ! kc get crd "$1" >/dev/null 2>&1; }
uninstall_crds() {
  local crd
  for crd in "${installed_crds[@]}"; do
    kc delete crd "$crd" --wait=false --ignore-not-found >/dev/null 2>&1 || true
  done
}
cleaned=false
cleanup() {
  if ! $cleaned; then
    delete_namespace "$ns"
    uninstall_crds
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------------------------------
echo "== test CRDs (${kCrdDir#"$repo/"})"
# fixture_or_absent CRD_FILE: true if the CRD it defines does not exist yet or is this test's own
# (carries the fixture label); a CRD of the same name from anything else is not touched.
fixture_or_absent() {
  local name label
  name=$(yaml_to_json "$1" | jq -r .metadata.name)
  label=$(kc get crd "$name" -o json 2>/dev/null | jq -r --arg k "$kFixtureLabel" '.metadata.labels[$k] // "none"') ||
    return 0 # absent
  [[ $label == "$kFixtureValue" ]] && return 0
  echo "  crd/$name exists and is not this test's fixture ($kFixtureLabel=$label): not touching it;" \
    "run the test on the test control plane (tests/testenv)" >&2
  return 1
}
crd_files=("$kCrdDir"/*.yaml)
# All checked before any is installed.
for file in "${crd_files[@]}"; do
  if ! fixture_or_absent "$file"; then
    fail "${file#"$repo/"}: its CRD is free to install"
    finish
    exit 1
  fi
done
for file in "${crd_files[@]}"; do
  rel=${file#"$repo/"}
  name=$(yaml_to_json "$file" | jq -r .metadata.name)
  # Applied before it is recorded: an apply that fails half-way may still have created it.
  installed_crds+=("$name")
  check "apply $rel" quiet kc apply --validate=false -f "$file"
  check "crd/$name is Established" quiet kc wait --for=condition=Established --timeout=60s "crd/$name"
  check "crd/$name: schema is structural (no NonStructuralSchema condition)" \
    test "$(kc get crd "$name" -o json | jq '[.status.conditions[]? | select(.type == "NonStructuralSchema")] | length')" = 0
done
# Established can precede the group's discovery and storage by a moment: wait for each boundedly.
served() { kc get --raw "$1" >/dev/null 2>&1; }
for path in "${kServedPaths[@]}"; do
  if wait_until 30 served "$path"; then
    pass "$path is served"
  else
    hint=""
    [[ $path == /apis/strata.io/* ]] && hint=" (the strata.io CRDs: tests/operator/install_crds.sh KUBECONFIG)"
    fail "$path is served$hint"
  fi
done

check "create namespace $ns" quiet kc create namespace "$ns" -o name

# ---------------------------------------------------------------------------------------------------
echo "== examples (${kExampleDir#"$repo/"}), server-side dry run in $ns"
# pruned_fields IN_JSON OUT_JSON: prints the paths of the leaves (scalars, empty objects and arrays)
# IN sets that OUT does not hold with the same value; true if there are none.
pruned_fields() {
  local paths
  paths=$(jq -c --slurpfile out "$2" '[paths as $p
      | select(getpath($p) | ((type != "object" and type != "array") or length == 0))
      | select(($out[0] | getpath($p)) != getpath($p)) | $p]' "$1") || return 1
  [[ $paths == "[]" ]] && return 0
  echo "  pruned or changed by the apiserver: $paths" >&2
  return 1
}
dry_run() { # FILE OUT_JSON
  local out
  out=$(kc apply --dry-run=server --validate=false -n "$ns" -f "$1" -o json 2>&1) || {
    printf '  %s\n' "$out" >&2
    return 1
  }
  printf '%s\n' "$out" >"$2"
}
shopt -s nullglob
examples=("$kExampleDir"/*.yaml)
shopt -u nullglob
((${#examples[@]} > 0)) || fail "no example under ${kExampleDir#"$repo/"}"
for file in "${examples[@]}"; do
  rel=${file#"$repo/"}
  base=$(basename "$file" .yaml)
  if ! yaml_to_json "$file" >"$work/in/$base.json"; then
    fail "$rel: one YAML document"
    continue
  fi
  check "$rel: no namespace in the file (applied into the user's)" \
    quiet jq -e '.metadata.namespace == null' "$work/in/$base.json"
  kind=$(jq -r .kind "$work/in/$base.json")
  # By kind, for the reference checks below; a second file of one kind is reported there.
  if [[ -e $work/in/kind-$kind.json ]]; then
    fail "$rel: a second $kind (one of each kind expected)"
  fi
  cp "$work/in/$base.json" "$work/in/kind-$kind.json"
  if check "$rel: $kind accepted by the apiserver" dry_run "$file" "$work/out/$base.json"; then
    check "$rel: every field it sets is in the apiserver's object (nothing pruned)" \
      pruned_fields "$work/in/$base.json" "$work/out/$base.json"
  fi
done
for kind in "${kKinds[@]}"; do
  check "examples/kubevirt has a $kind" test -e "$work/in/kind-$kind.json"
done

# ---------------------------------------------------------------------------------------------------
echo "== references between the examples"
ssd_classes=$(python3 -c '
import sys, yaml
print(" ".join(c["name"] for c in yaml.safe_load(open(sys.argv[1]))["storageClasses"] if c.get("tier") == "ssd"))' \
  "$kValues") || ssd_classes=""
# refs FILTER: jq over all examples, by kind: $vm, $pvc, $nad, $vnc, $bwp, $tp, $dp (each the object).
refs() {
  local k=$work/in/kind-
  jq -en --slurpfile vm "${k}VirtualMachine.json" --slurpfile pvc "${k}PersistentVolumeClaim.json" \
    --slurpfile nad "${k}NetworkAttachmentDefinition.json" \
    --slurpfile vnc "${k}VirtualNetworkConfig.json" --slurpfile bwp "${k}BandwidthPolicy.json" \
    --slurpfile tp "${k}TieringPolicy.json" --slurpfile dp "${k}DedupPolicy.json" \
    --arg ssd "$ssd_classes" \
    '$vm[0] as $vm | $pvc[0] as $pvc | $nad[0] as $nad | $vnc[0] as $vnc | $bwp[0] as $bwp
     | $tp[0] as $tp | $dp[0] as $dp | $vm.spec.template.spec as $vmi
     | ($vmi.domain.devices.interfaces // []) as $ifaces | '"$1" >/dev/null
}
check "VM: every disk has a volume of its name" \
  refs '[$vmi.volumes[].name] as $v | all($vmi.domain.devices.disks[]; .name as $n | any($v[]; . == $n))'
check "VM: every interface has a network of its name" \
  refs '[$vmi.networks[].name] as $n | all($ifaces[]; .name as $i | any($n[]; . == $i))'
check "VM: a volume's persistentVolumeClaim is the PVC example ($(jq -r .metadata.name "$work/in/kind-PersistentVolumeClaim.json" 2>/dev/null))" \
  refs 'any($vmi.volumes[]; .persistentVolumeClaim.claimName == $pvc.metadata.name)'
check "VM: its multus network is the NetworkAttachmentDefinition example, with an sriov interface" \
  refs '[$vmi.networks[] | select(.multus) | .multus.networkName] == [$nad.metadata.name]
    and ([$vmi.networks[] | select(.multus) | .name] as $m | any($ifaces[]; .sriov and (.name as $i | $m | index([$i]))))'
check "VM: evictionStrategy LiveMigrate, and its PVC is a ReadWriteMany raw block volume" \
  refs '$vmi.evictionStrategy == "LiveMigrate" and $pvc.spec.volumeMode == "Block"
    and ($pvc.spec.accessModes | index(["ReadWriteMany"]))'
check "PVC: storageClassName is the chart's ssd StorageClass (values.yaml: ${ssd_classes:-none})" \
  refs '$ssd | split(" ") | index([$pvc.spec.storageClassName])'
check "NAD: spec.config is JSON for strata-sriov, with the mac capability and no ipam (vfio VF)" \
  refs '$nad.spec.config | fromjson | .type == "strata-sriov" and .capabilities.mac == true
    and (has("ipam") | not) and (.cniVersion | type == "string")'
check "VNC: its workload is the VirtualMachine example" \
  refs '$vnc.spec.workload == {kind: "VirtualMachine", name: $vm.metadata.name}'
check "VNC: each interface is a VM interface of its name and type, with the VM interface's MAC" \
  refs 'all($vnc.spec.interfaces[]; . as $c | any($ifaces[]; .name == $c.name
      and (($c.type == "sriov") == (.sriov != null))
      and (($c.mac == null) or ((.macAddress // "" | ascii_downcase | gsub("-"; ":")) == $c.mac))))'
check "VNC and NAD: same VLAN, same SR-IOV device plugin resource" \
  refs '($nad.spec.config | fromjson) as $cni
    | all($vnc.spec.interfaces[] | select(.type == "sriov"); .vlan == $cni.vlan
      and .sriov.resourceName == $nad.metadata.annotations["k8s.v1.cni.cncf.io/resourceName"])'
check "BandwidthPolicy: a non-empty podSelector matching the VM template's labels" \
  refs '($bwp.spec.podSelector.matchLabels // {}) as $s | ($s | length) > 0
    and all($s | to_entries[]; $vm.spec.template.metadata.labels[.key] == .value)'
check "TieringPolicy and DedupPolicy: non-empty selectors matching the PVC's labels" \
  refs 'all($tp, $dp; (.spec.selector.matchLabels // {}) as $s | ($s | length) > 0
    and all($s | to_entries[]; $pvc.metadata.labels[.key] == .value))'

# ---------------------------------------------------------------------------------------------------
echo "== the schemas reject broken variants"
# rejected DESCRIPTION BASE_JSON JQ_MUTATION ERE...: the base object changed by the mutation must
# be refused by the apiserver's validation (Invalid), with an error matching every ERE. The
# base objects themselves were accepted above. kube-apiserver 1.20 leaves the list index out of
# some paths (disks.disk.bus), newer ones put it in: the EREs allow both.
rejected() {
  local what=$1 base=$2 mutation=$3 out
  shift 3
  if ! jq "$mutation" "$base" >"$work/variant.json"; then
    fail "$what: the mutation $mutation does not apply"
    return
  fi
  if out=$(kc apply --dry-run=server --validate=false -n "$ns" -f "$work/variant.json" 2>&1); then
    fail "$what: accepted, must be rejected"
    return
  fi
  local want ok=true
  for want in 'is invalid' "$@"; do
    grep -qE -- "$want" <<<"$out" || {
      ok=false
      echo "  no match for '$want' in: $out" >&2
    }
  done
  # The report line: the error without kubectl's preamble, on one line, shortened.
  out=$(tr -s '\n' ' ' <<<"$out" | sed -E 's/^The [A-Za-z]+ "[^"]*" is invalid: //')
  if $ok; then pass "$what: rejected (${out:0:150})"; else fail "$what"; fi
}
vm=$work/in/kind-VirtualMachine.json
nad=$work/in/kind-NetworkAttachmentDefinition.json
readonly kDevices='spec\.template\.spec\.domain\.devices'
rejected "VM: disk bus ide2" "$vm" \
  '.spec.template.spec.domain.devices.disks[0].disk.bus = "ide2"' \
  "$kDevices\.disks(\[0\])?\.disk\.bus: Unsupported value: \"ide2\""
rejected "VM: an interface with two bindings (sriov + masquerade)" "$vm" \
  '(.spec.template.spec.domain.devices.interfaces[] | select(.sriov)) += {masquerade: {}}' \
  "$kDevices\.interfaces(\[[0-9]+\])?\"? must validate one and only one schema \(oneOf\)\. Found 2 valid"
rejected "VM: runStrategy Sometimes" "$vm" '.spec.runStrategy = "Sometimes"' \
  'spec\.runStrategy: Unsupported value: "Sometimes"'
rejected "VM: running and runStrategy both set" "$vm" '.spec.running = true' \
  '"?spec"? must not validate the schema \(not\)'
rejected "VM: evictionStrategy Migrate" "$vm" '.spec.template.spec.evictionStrategy = "Migrate"' \
  'spec\.template\.spec\.evictionStrategy: Unsupported value: "Migrate"'
rejected "VM: a persistentVolumeClaim volume without claimName" "$vm" \
  '(.spec.template.spec.volumes[] | select(.persistentVolumeClaim) | .persistentVolumeClaim) |= del(.claimName)' \
  'spec\.template\.spec\.volumes(\[[0-9]+\])?\.persistentVolumeClaim\.claimName: Required value'
rejected "VM: a volume without a source" "$vm" \
  '(.spec.template.spec.volumes[] | select(.cloudInitNoCloud)) |= del(.cloudInitNoCloud)' \
  'spec\.template\.spec\.volumes(\[[0-9]+\])?"? must validate one and only one schema \(oneOf\)\. Found none valid'
rejected "VM: a network with two sources (pod + multus)" "$vm" \
  '(.spec.template.spec.networks[] | select(.multus)) += {pod: {}}' \
  'spec\.template\.spec\.networks(\[[0-9]+\])?"? must validate one and only one schema \(oneOf\)\. Found 2 valid'
rejected "VM: a multus network without networkName" "$vm" \
  '(.spec.template.spec.networks[] | select(.multus) | .multus) |= del(.networkName)' \
  'spec\.template\.spec\.networks(\[[0-9]+\])?\.multus\.networkName: Required value'
rejected "VM: a MAC address of five octets" "$vm" \
  '(.spec.template.spec.domain.devices.interfaces[] | select(.macAddress) | .macAddress) = "02:5e:10:00:00"' \
  "$kDevices\.interfaces(\[[0-9]+\])?\.macAddress: Invalid value: \"02:5e:10:00:00\""
rejected "VM: two disks of one name" "$vm" \
  '.spec.template.spec.domain.devices.disks += [.spec.template.spec.domain.devices.disks[0]]' \
  "$kDevices\.disks\[[0-9]+\]: Duplicate value"
rejected "VM: guest memory '8 GB' (not a quantity)" "$vm" '.spec.template.spec.domain.memory.guest = "8 GB"' \
  'spec\.template\.spec\.domain\.memory\.guest: Invalid value: "8 GB"'
rejected "NAD: spec.config an object, not a string" "$nad" \
  '.spec.config |= fromjson' \
  'spec\.config: Invalid value: "object": spec\.config in body must be of type string'

# ---------------------------------------------------------------------------------------------------
echo "== cleanup"
delete_namespace "$ns"
check "namespace $ns deleted" wait_until 60 namespace_gone "$ns"
uninstall_crds
cleaned=true
for crd in "${installed_crds[@]}"; do
  check "crd/$crd deleted" wait_until 60 crd_gone "$crd"
done
rm -rf "$work/kube-cache"

echo -n "kubevirt_manifests: "
finish
