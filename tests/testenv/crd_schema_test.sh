#!/usr/bin/env bash
# Checks Strata's CRDs against a real apiserver: every CRD under crds/ installs and becomes
# Established; the valid StorageDevice sample is accepted and defaulted; every other kind's sample
# under examples/policies is accepted with its schema defaults, resolves by short name and category
# and has a status subresource and printer columns; every sample under examples/policies/invalid
# (any kind) is rejected with an error matching its `# expect-error:` lines (extended regexes); and the status
# subresource keeps spec and status apart.
#
# Usage: crd_schema_test.sh [ENV_FILE]
#   ENV_FILE is DIR/env from `kube-testenv.sh up DIR`; without it KUBECONFIG must be set.
#
# Prints PASS/FAIL per check and a closing "N passed, N failed" line; exits 1 if any check failed.
# Deletes the objects it created. The CRDs stay installed: applying them is idempotent and other
# tests against the same control plane need them.
set -euo pipefail

kRepo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
readonly kRepo
readonly kCrdDir="$kRepo/crds"  # a link to charts/strata/crds, the CRDs' one home
readonly kSampleDir="$kRepo/examples/policies"
readonly kValidSample="$kSampleDir/storagedevice.yaml"
readonly kResource=storagedevices.strata.io
readonly kApiPath=/apis/strata.io/v1alpha1/storagedevices

if (($# > 1)); then
  echo "usage: $0 [ENV_FILE]" >&2
  exit 2
fi
if (($# == 1)); then
  # shellcheck disable=SC1090 # written by kube-testenv.sh up
  source "$1"
fi
if [[ -z ${KUBECONFIG:-} ]]; then
  echo "FAIL: no control plane: pass DIR/env from kube-testenv.sh up, or set KUBECONFIG" >&2
  exit 2
fi
export KUBECONFIG

passed=0
failed=0
pass() {
  echo "PASS: $*"
  passed=$((passed + 1))
}
fail() {
  echo "FAIL: $*"
  failed=$((failed + 1))
}
# check DESCRIPTION CMD...: one PASS or FAIL line for CMD's exit status. CMD's stdout is dropped to
# keep the report readable; its stderr (kubectl's errors, the helpers' diagnostics) stays.
check() {
  local what=$1
  shift
  if "$@" >/dev/null; then pass "$what"; else fail "$what"; fi
}

kc() { kubectl --request-timeout=30s "$@"; }

work=$(mktemp -d)
created=()
created_files=()  # manifests of any kind, deleted by file
cleanup() {
  local name file
  for name in "${created[@]}"; do
    kc delete "$kResource" "$name" --ignore-not-found >/dev/null 2>&1 || true
  done
  for file in "${created_files[@]}"; do
    kc delete -f "$file" --ignore-not-found >/dev/null 2>&1 || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

# Names of the objects a manifest would create, without creating them.
manifest_name() { kc create --dry-run=client --validate=false -f "$1" -o jsonpath='{.metadata.name}'; }

# json_is FILE JQ_FILTER: true if the filter yields true; prints what it saw otherwise.
json_is() {
  jq -e "$2" "$1" >/dev/null && return 0
  echo "  expected $2 in:" >&2
  jq -c '{metadata: {generation: .metadata.generation}, spec, status}' "$1" | sed 's/^/  /' >&2
  return 1
}

same_spec() { jq -e --slurpfile before "$1" '.spec == $before[0].spec' "$2" >/dev/null; }
# grep reads the whole listing (no -q): a grep that quits early would SIGPIPE kubectl, and
# pipefail would fail the check whenever other tests' objects make the listing longer.
listed_in_category() { kc get strata -o name | grep -x "storagedevice.strata.io/$1" >/dev/null; }
# The object in OBJ_JSON under another name with ENDPOINT: validated and defaulted by the apiserver,
# never stored.
accepted_with_endpoint() { # OBJ_JSON ENDPOINT
  jq --arg e "$2" '.spec.endpoint = $e | .metadata = {name: "sdev-dry-run"}' "$1" |
    kc create --dry-run=server --validate=false -f - -o name >/dev/null
}
# error_matches OUTPUT ERE: true if OUTPUT matches; shows OUTPUT otherwise.
error_matches() {
  grep -qE -- "$2" <<<"$1" && return 0
  echo "  the error was: $1" >&2
  return 1
}
absent() { ! kc get "$kResource" "$1" -o name >/dev/null 2>&1; }

# ---------------------------------------------------------------------------------------------------
echo "== CRDs in ${kCrdDir#"$kRepo/"}"
crds=()
# Another test may apply the same CRDs at the same moment (tests/operator's strata_crds fixture):
# a write conflict between two identical applies is retried.
apply_crd() {
  local out
  for _ in 1 2 3; do
    if out=$(kc apply -f "$1" -o name 2>&1); then
      printf '%s\n' "$out"
      return 0
    fi
    sleep 0.5
  done
  printf '%s\n' "$out"
  return 1
}
for file in "$kCrdDir"/*.yaml; do
  if out=$(apply_crd "$file"); then
    pass "apply ${file#"$kRepo/"}"
    crds+=("$out")
  else
    fail "apply ${file#"$kRepo/"}: $out"
  fi
done
((${#crds[@]} > 0)) || fail "no CRD under $kCrdDir"
for crd in "${crds[@]}"; do
  check "$crd is Established" \
    kc wait --for=condition=Established --timeout=60s "$crd"
  check "$crd has its names accepted" \
    kc wait --for=condition=NamesAccepted --timeout=10s "$crd"
done

# Established can precede the group showing up in discovery by a moment: wait for it, boundedly.
served() {
  local deadline=$((SECONDS + 30))
  until kc get --raw "$kApiPath" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
}
check "$kApiPath is served" served

# ---------------------------------------------------------------------------------------------------
echo "== valid sample"
name=$(manifest_name "$kValidSample")
created+=("$name")
# A leftover from an interrupted run would turn the create into AlreadyExists.
kc delete "$kResource" "$name" --ignore-not-found >/dev/null
# --validate=false: kubectl would otherwise check the schema itself (1.20 has no server-side field
# validation to defer to); what is under test is the apiserver's validation.
check "create $name from ${kValidSample#"$kRepo/"}" \
  kc create --validate=false -f "$kValidSample"
kc get "$kResource" "$name" -o json >"$work/obj.json"
check "the apiserver defaulted spec.desiredState to Online" \
  json_is "$work/obj.json" '.spec.desiredState == "Online"'
check "spec reads back as written (endpoint, 2 tiers, int64 capacity, price)" \
  json_is "$work/obj.json" '.spec.endpoint == "sd-01.storage.example.net:10809"
    and (.spec.tiers | length) == 2
    and .spec.tiers[1].capacityBytes == 16000900661248
    and .spec.tiers[0].pricePerGiBHour == 0.00012'
for endpoint in "[fd00::1]:10809" "192.0.2.1:3260" "localhost:1"; do
  check "endpoint $endpoint is accepted (server-side dry run)" \
    accepted_with_endpoint "$work/obj.json" "$endpoint"
done
check "short name sdev resolves" kc get sdev "$name" -o name
check "category strata lists it" listed_in_category "$name"

# ---------------------------------------------------------------------------------------------------
echo "== valid samples of the other kinds"
# What the apiserver must have defaulted in each sample (the samples leave these fields out).
declare -A kDefaults=(
  [tieringpolicy.yaml]='.spec.scope == "IntraDevice" and .spec.cooldown == "1h"
    and .spec.maxConcurrentMigrations == 2 and .spec.paused == false
    and .spec.rules[1].sustainedFor == "10m" and .spec.rules[0].sustainedFor == "15m"'
  [deduppolicy.yaml]='.spec.mode == "Inline" and .spec.crossOwnerSharing == false
    and .spec.maxIndexMemoryBytes == 0 and .spec.minSavingsRatio == 1.3'
  [maintenancewindow.yaml]='.spec.drain.policy == "MigrateVolumes" and .spec.drain.leadTime == "3h"
    and .spec.drain.maxConcurrentMigrations == 2'
  [maintenancewindow-monthly.yaml]='.spec.drain.policy == "MigrateVolumes"
    and .spec.drain.maxConcurrentMigrations == 2 and .spec.suspend == false and .spec.restore == true'
  [bandwidthpolicy.yaml]='.spec.priority == 0 and .spec.elastic.scaleUpUtilizationPercent == 80
    and .spec.elastic.sustainedFor == "5m" and .spec.egress.burstBytes == 1048576'
  [virtualnetworkconfig.yaml]='.spec.interfaces[0].bond.members == 2
    and .spec.interfaces[0].bond.miimonMilliseconds == 100 and .spec.interfaces[0].mtu == 9000'
  [usagereport.yaml]='.spec == {}'
)
for file in "$kSampleDir"/*.yaml; do
  [[ $file == "$kValidSample" ]] && continue
  rel=${file#"$kRepo/"}
  base=$(basename "$file")
  created_files+=("$file")
  kc delete -f "$file" --ignore-not-found >/dev/null 2>&1 || true
  if ! out=$(kc create --validate=false -f "$file" -o name 2>&1); then
    fail "create from $rel: $out"
    continue
  fi
  pass "create $out from $rel"
  kc get -f "$file" -o json >"$work/sample.json"
  if [[ -n ${kDefaults[$base]:-} ]]; then
    check "$rel: reads back with the schema's defaults" json_is "$work/sample.json" "${kDefaults[$base]}"
  else
    fail "$rel: no expected defaults listed in crd_schema_test.sh"
  fi
  kind=$(jq -r .kind "$work/sample.json")
  obj_name=$(jq -r .metadata.name "$work/sample.json")
  crd_name=$(kc get crd -o json | jq -r --arg k "$kind" '.items[] | select(.spec.group == "strata.io" and .spec.names.kind == $k) | .metadata.name')
  short=$(kc get crd "$crd_name" -o jsonpath='{.spec.names.shortNames[0]}')
  check "$kind: short name $short resolves" kc get "$short" "$obj_name" -o name
  check "$kind: category strata lists it" \
    bash -c 'kubectl --request-timeout=30s get strata -o name | grep -i "^$0\.strata\.io/$1$" >/dev/null' "$kind" "$obj_name"
  check "$kind: status subresource is enabled" \
    json_is <(kc get crd "$crd_name" -o json) '.spec.versions[0].subresources.status == {}'
  check "$kind: printer columns defined" \
    json_is <(kc get crd "$crd_name" -o json) '(.spec.versions[0].additionalPrinterColumns | length) >= 3'
done

# ---------------------------------------------------------------------------------------------------
echo "== invalid samples"
# Any kind: the manifest names its resource, so delete and get go by file.
absent_file() { ! kc get -f "$1" -o name >/dev/null 2>&1; }
for file in "$kSampleDir"/invalid/*.yaml; do
  rel=${file#"$kRepo/"}
  created_files+=("$file")
  kc delete -f "$file" --ignore-not-found >/dev/null 2>&1 || true
  if out=$(kc create --validate=false -f "$file" 2>&1); then
    fail "$rel was accepted; it must be rejected"
    continue
  fi
  pass "$rel is rejected"
  mapfile -t expected < <(sed -n 's/^# expect-error: //p' "$file")
  ((${#expected[@]} > 0)) || fail "$rel has no '# expect-error:' line saying why it must be rejected"
  for want in "${expected[@]}"; do
    check "$rel: error matches '$want'" error_matches "$out" "$want"
  done
  check "$rel left no object behind" absent_file "$file"
done

# ---------------------------------------------------------------------------------------------------
echo "== status subresource"
kc get "$kResource" "$name" -o json >"$work/before.json"
generation=$(jq .metadata.generation "$work/before.json")
# A PUT to /status carrying a changed spec: the apiserver must take the status and drop the spec.
jq '.spec.endpoint = "tampered.example.net:1"
  | .status = {
      phase: "Online", observedGeneration: .metadata.generation,
      capacityBytes: 19841656643584, usedBytes: 1099511627776, dedupRatio: 1.7,
      readIOPS: 12000, writeIOPS: 8000,
      tiers: [{class: "ssd", capacityBytes: 3840755982336, usedBytes: 1099511627776}],
      conditions: [{type: "Ready", status: "True", reason: "DaemonReachable", message: "ok",
                    observedGeneration: .metadata.generation,
                    lastTransitionTime: "2024-01-01T00:00:00Z"}]}' \
  "$work/before.json" >"$work/status-put.json"
check "PUT $kApiPath/$name/status" \
  kc replace --raw "$kApiPath/$name/status" -f "$work/status-put.json"
kc get "$kResource" "$name" -o json >"$work/after-status.json"
check "status was stored" \
  json_is "$work/after-status.json" '.status.phase == "Online" and .status.usedBytes == 1099511627776
    and .status.dedupRatio == 1.7 and .status.conditions[0].type == "Ready"'
check "the status write left spec unchanged" \
  same_spec "$work/before.json" "$work/after-status.json"
check "the status write did not bump metadata.generation ($generation)" \
  json_is "$work/after-status.json" ".metadata.generation == $generation"

check "merge PATCH through --subresource=status" \
  kc patch "$kResource" "$name" --subresource=status --type=merge -p '{"status":{"readIOPS":13000}}'
kc get "$kResource" "$name" -o json >"$work/after-patch.json"
check "patched status field stored" json_is "$work/after-patch.json" '.status.readIOPS == 13000'

# The converse: a write to the main resource changes spec and ignores status.
check "merge PATCH of spec (with a status change in the same body)" \
  kc patch "$kResource" "$name" --type=merge \
  -p '{"spec":{"desiredState":"Maintenance"},"status":{"phase":"Bogus"}}'
kc get "$kResource" "$name" -o json >"$work/after-spec.json"
check "spec.desiredState changed, status.phase did not" \
  json_is "$work/after-spec.json" '.spec.desiredState == "Maintenance" and .status.phase == "Online"'
check "the spec write bumped metadata.generation" \
  json_is "$work/after-spec.json" ".metadata.generation == $((generation + 1))"

if out=$(kc patch "$kResource" "$name" --subresource=status --type=merge \
  -p '{"status":{"conditions":[{"type":"Ready","status":"Maybe"}]}}' 2>&1); then
  fail "a condition status of Maybe was accepted"
else
  check "status is validated too: a condition status of Maybe is rejected" \
    error_matches "$out" 'status\.conditions(\[0\])?\.status: Unsupported value: "Maybe"'
fi

# ---------------------------------------------------------------------------------------------------
echo "== printer columns"
table=$(kc get "$kResource" "$name" -o wide)
printf '  %s\n' "${table//$'\n'/$'\n'  }"
header=$(head -n 1 <<<"$table" | tr -s ' ')
row=$(sed -n 2p <<<"$table" | tr -s ' ')
check "columns NAME ENDPOINT STATE READY USED DESIRED REGION AGE" \
  test "$header" = "NAME ENDPOINT STATE READY USED DESIRED REGION AGE"
check "row shows endpoint, phase, Ready=True from the conditions filter, used bytes, desired state" \
  grep -q "^$name sd-01.storage.example.net:10809 Online True 1099511627776 Maintenance eu-west-1 " <<<"$row"

echo "crd_schema: $passed passed, $failed failed"
((failed == 0))
