#!/usr/bin/env python3
"""Checks what `helm template` rendered from charts/strata.

Usage: check_manifests.py MANIFEST.yaml default|nondefault RELEASE

Prints one PASS/FAIL line per check and a closing "N passed, N failed" line; exits 1 if any failed.
The expectations follow charts/strata/values.yaml (default) and tests/chart/values-nondefault.yaml.
"""
import sys

import yaml

DRIVER = "block.csi.strata.io"
SIDECARS = {
    "csi-provisioner": "registry.k8s.io/sig-storage/csi-provisioner:v3.4.1",
    "csi-attacher": "registry.k8s.io/sig-storage/csi-attacher:v4.2.0",
    "csi-resizer": "registry.k8s.io/sig-storage/csi-resizer:v1.7.0",
    "csi-snapshotter": "registry.k8s.io/sig-storage/csi-snapshotter:v6.2.3",
    "liveness-probe": "registry.k8s.io/sig-storage/livenessprobe:v2.9.0",
}
REGISTRAR = "registry.k8s.io/sig-storage/csi-node-driver-registrar:v2.7.0"

passed = 0
failed = 0


def check(what, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"PASS: {what}")
    else:
        failed += 1
        print(f"FAIL: {what}" + (f": {detail}" if detail else ""))


def main():
    path, mode, release = sys.argv[1], sys.argv[2], sys.argv[3]
    nondefault = mode == "nondefault"
    with open(path) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    full = f"{release}-strata"
    objs = {}
    for d in docs:
        objs[(d["kind"], d["metadata"]["name"])] = d

    def get(kind, name):
        return objs.get((kind, name))

    def kinds(kind):
        return [d for d in docs if d["kind"] == kind]

    def container(pod_spec, name):
        for c in pod_spec.get("initContainers", []) + pod_spec.get("containers", []):
            if c["name"] == name:
                return c
        return None

    # Every object carries the release's instance label: the uninstall check relies on it.
    unlabelled = [f"{d['kind']}/{d['metadata']['name']}" for d in docs
                  if d["metadata"].get("labels", {}).get("app.kubernetes.io/instance") != release]
    check(f"every object is labelled app.kubernetes.io/instance={release}", not unlabelled,
          ", ".join(unlabelled))

    # --- operator
    op = get("Deployment", f"{full}-operator")
    check("operator Deployment rendered", op is not None)
    if op:
        spec = op["spec"]
        pod = spec["template"]["spec"]
        c = container(pod, "operator")
        args = c["args"]
        check("operator replicas", spec["replicas"] == (3 if nondefault else 2), spec["replicas"])
        check("operator runs /usr/local/bin/strata-operator",
              c["command"] == ["/usr/local/bin/strata-operator"], c["command"])
        check("operator leader election on, Lease in its namespace",
              "--leader-elect" in args and "--leader-elect-namespace=$(POD_NAMESPACE)" in args,
              args)
        port = 9091 if nondefault else 8081
        check("operator liveness and readiness probes on the health port",
              c["livenessProbe"]["httpGet"]["path"] == "/healthz"
              and c["readinessProbe"]["httpGet"]["path"] == "/readyz"
              and f"--health-addr=:{port}" in args
              and {"name": "health", "containerPort": port} in c["ports"], c.get("ports"))
        mport = 9090 if nondefault else 8080
        check("operator metrics port", f"--metrics-addr=:{mport}" in args
              and {"name": "metrics", "containerPort": mport} in c["ports"], args)
        check("operator uses its own ServiceAccount",
              pod["serviceAccountName"] == f"{full}-operator"
              and get("ServiceAccount", f"{full}-operator") is not None)
        want_image = ("registry.example.net/strata/strata:operator-test" if nondefault
                      else "strata:0.1.0")
        check(f"operator image {want_image}", c["image"] == want_image, c["image"])
        svc = get("Service", f"{full}-operator-metrics")
        check("operator metrics Service selects the operator pods",
              svc is not None and all(pod_labels_match(svc["spec"]["selector"], op)))
        pdb = get("PodDisruptionBudget", f"{full}-operator")
        check("operator PodDisruptionBudget selects the operator pods",
              pdb is not None
              and all(pod_labels_match(pdb["spec"]["selector"]["matchLabels"], op)))
        if pdb:
            check("PDB maxUnavailable", pdb["spec"]["maxUnavailable"] == (2 if nondefault else 1))

    # --- CSI controller
    ctl = get("Deployment", f"{full}-csi-controller")
    check("CSI controller Deployment rendered", ctl is not None)
    if ctl:
        pod = ctl["spec"]["template"]["spec"]
        names = [c["name"] for c in pod["containers"]]
        check("CSI controller has 6 containers: strata-csi + provisioner, attacher, resizer, "
              "snapshotter, livenessprobe", names == ["csi-plugin", *SIDECARS], names)
        for name, image in SIDECARS.items():
            c = container(pod, name)
            check(f"{name} image {image}", c is not None and c["image"] == image,
                  c and c["image"])
        plugin = container(pod, "csi-plugin")
        check("csi-plugin runs strata-csi --mode=controller",
              plugin["command"] == ["/usr/local/bin/strata-csi"]
              and "--mode=controller" in plugin["args"], plugin["args"])
        prov = container(pod, "csi-provisioner")["args"]
        check("provisioner: --extra-create-metadata and --leader-election",
              "--extra-create-metadata" in prov and "--leader-election" in prov, prov)
        check("provisioner: no --enable-capacity (Kubernetes 1.20 serves no CSIStorageCapacity)",
              not any(a.startswith("--enable-capacity") for a in prov), prov)
        check("provisioner: Topology feature gate only with device zones",
              ("--feature-gates=Topology=true" in prov) == nondefault, prov)
        for name in ("csi-attacher", "csi-resizer", "csi-snapshotter"):
            check(f"{name}: --leader-election", "--leader-election" in container(pod, name)["args"])
        check("csi-snapshotter: --extra-create-metadata",
              "--extra-create-metadata" in container(pod, "csi-snapshotter")["args"])
        # The VolumeSnapshotClass needs the cluster's snapshot CRDs (create: auto): rendered when
        # snapshot.storage.k8s.io/v1 is served (nondefault: --api-versions), else not.
        vsc = kinds("VolumeSnapshotClass")
        if nondefault:
            check("VolumeSnapshotClass strata-snapshots of the driver, Delete, the default",
                  len(vsc) == 1 and vsc[0]["metadata"]["name"] == "strata-snapshots"
                  and vsc[0]["driver"] == DRIVER and vsc[0]["deletionPolicy"] == "Delete"
                  and vsc[0]["metadata"]["annotations"]
                  ["snapshot.storage.kubernetes.io/is-default-class"] == "true", vsc)
        else:
            check("no VolumeSnapshotClass without snapshot.storage.k8s.io/v1", not vsc, vsc)
        check("CSI controller liveness probe through the livenessprobe sidecar",
              plugin["livenessProbe"]["httpGet"]["path"] == "/healthz")
        devices = [a for a in plugin["args"] if a.startswith("--device=")]
        want = (["--device=chart-test-dev-1=10.0.0.5:17400",
                 "--device=chart-test-dev-2=[fd00::2]:17400"] if nondefault else [])
        check("strata-csi --device per stored.devices entry", devices == want, devices)
        check("strata-csi --devices-from-cluster by default (devicesFromCluster)",
              ("--devices-from-cluster" in plugin["args"]) != nondefault, plugin["args"])
        if nondefault:
            check("strata-csi --device-topology per zoned device",
                  "--device-topology=chart-test-dev-1=zone-a" in plugin["args"]
                  and "--device-topology=chart-test-dev-2=zone-b" in plugin["args"],
                  plugin["args"])
            check("imagePullSecrets on the controller pod",
                  pod.get("imagePullSecrets") == [{"name": "regcred"}])

    # --- CSI node
    zones = ["zone-a", "zone-b"] if nondefault else [None]
    kubelet = "/var/lib/k0s/kubelet" if nondefault else "/var/lib/kubelet"
    state = "/var/lib/strata-csi/state" if nondefault else "/var/lib/strata-csi/node"
    for zone in zones:
        name = f"{full}-csi-node" + (f"-{zone}" if zone else "")
        ds = get("DaemonSet", name)
        check(f"CSI node DaemonSet {name} rendered", ds is not None)
        if not ds:
            continue
        pod = ds["spec"]["template"]["spec"]
        plugin = container(pod, "csi-plugin")
        check(f"{name}: containers csi-plugin, node-driver-registrar, liveness-probe",
              [c["name"] for c in pod["containers"]]
              == ["csi-plugin", "node-driver-registrar", "liveness-probe"])
        check(f"{name}: registrar image {REGISTRAR}",
              container(pod, "node-driver-registrar")["image"] == REGISTRAR)
        check(f"{name}: csi-plugin privileged", plugin["securityContext"].get("privileged") is True)
        check(f"{name}: host network (NBD from the node's address)", pod.get("hostNetwork") is True)
        mounts = {m["name"]: m for m in plugin["volumeMounts"]}
        vols = {v["name"]: v for v in pod["volumes"]}
        check(f"{name}: kubelet dir {kubelet} mounted with Bidirectional propagation",
              mounts["kubelet-dir"]["mountPath"] == kubelet
              and mounts["kubelet-dir"].get("mountPropagation") == "Bidirectional"
              and vols["kubelet-dir"]["hostPath"]["path"] == kubelet, mounts.get("kubelet-dir"))
        check(f"{name}: hostPath /dev, /sys, /run/udev",
              all(vols[v]["hostPath"]["path"] == p
                  for v, p in (("dev", "/dev"), ("sys", "/sys"), ("run-udev", "/run/udev"))))
        check(f"{name}: --state-dir={state} on a hostPath",
              f"--state-dir={state}" in plugin["args"]
              and vols["state-dir"]["hostPath"]["path"] == state, plugin["args"])
        check(f"{name}: --node-id NAME@IP from the downward API",
              "--node-id=$(NODE_NAME)@$(NODE_IP)" in plugin["args"]
              and {"name": "NODE_IP",
                   "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}} in plugin["env"])
        reg = container(pod, "node-driver-registrar")["args"]
        check(f"{name}: registrar points kubelet at {kubelet}/plugins/{DRIVER}/csi.sock",
              f"--kubelet-registration-path={kubelet}/plugins/{DRIVER}/csi.sock" in reg, reg)
        if zone:
            check(f"{name}: --zone={zone} and the zone's nodeSelector",
                  f"--zone={zone}" in plugin["args"]
                  and pod["nodeSelector"].get("topology.kubernetes.io/zone") == zone)
        sa = get("ServiceAccount", pod["serviceAccountName"])
        check(f"{name}: its ServiceAccount mounts no token",
              sa is not None and sa.get("automountServiceAccountToken") is False
              and pod.get("automountServiceAccountToken") is False)

    # --- CSIDriver and StorageClasses
    drv = get("CSIDriver", DRIVER)
    check(f"CSIDriver {DRIVER} with attachRequired", drv is not None
          and drv["spec"]["attachRequired"] is True)
    want_sc = ({"chart-test-ssd": ("ssd", "false", "Immediate", False, "Retain"),
                "chart-test-sas-dedup": ("sas", "true", "WaitForFirstConsumer", True, "Delete")}
               if nondefault else
               {"strata-ssd": ("ssd", "false", "WaitForFirstConsumer", True, "Delete"),
                "strata-sata": ("sata", "true", "WaitForFirstConsumer", True, "Delete")})
    got_sc = {d["metadata"]["name"]: d for d in kinds("StorageClass")}
    check("StorageClasses per tier: " + ", ".join(want_sc), set(got_sc) == set(want_sc),
          sorted(got_sc))
    for name, (tier, dedup, binding, expand, reclaim) in want_sc.items():
        sc = got_sc.get(name)
        if not sc:
            continue
        check(f"StorageClass {name}: {DRIVER}, tier={tier}, dedup={dedup}, {binding}, "
              f"allowVolumeExpansion={expand}, {reclaim}",
              sc["provisioner"] == DRIVER and sc["parameters"]["tier"] == tier
              and sc["parameters"]["dedup"] == dedup and sc["volumeBindingMode"] == binding
              and sc["allowVolumeExpansion"] is expand and sc["reclaimPolicy"] == reclaim, sc)
    if nondefault:
        sc = got_sc.get("chart-test-sas-dedup", {})
        check("StorageClass optional parameters owner, device, fstype and mountOptions",
              sc.get("parameters", {}).get("owner") == "team-a"
              and sc["parameters"].get("device") == "chart-test-dev-1"
              and sc["parameters"].get("csi.storage.k8s.io/fstype") == "xfs"
              and sc.get("mountOptions") == ["noatime"], sc)
        check("default StorageClass annotation",
              got_sc["chart-test-ssd"]["metadata"].get("annotations", {})
              .get("storageclass.kubernetes.io/is-default-class") == "true")

    # --- strata-stored
    st = get("DaemonSet", f"{full}-stored")
    check("strata-stored DaemonSet rendered", st is not None)
    if st:
        pod = st["spec"]["template"]["spec"]
        c = container(pod, "stored")
        args = c["args"]
        check("strata-stored on nodes labelled strata.io/storage-node=true",
              pod["nodeSelector"].get("strata.io/storage-node") == "true", pod["nodeSelector"])
        check("strata-stored: host network, portal and gRPC on the node IP",
              pod.get("hostNetwork") is True
              and "--portal=$(NODE_IP):10809" in args
              and f"--grpc=$(NODE_IP):{17400 if nondefault else 7400}" in args, args)
        check("strata-stored runs /usr/local/bin/strata-stored --device=$(NODE_NAME)",
              c["command"] == ["/usr/local/bin/strata-stored"] and "--device=$(NODE_NAME)" in args)
        tiers = [a for a in args if a.startswith("--tier=")]
        want = (["--tier=ssd=/var/lib/strata/tiers/ssd:100GiB:0.00012",
                 "--tier=sas=/var/lib/strata/tiers/sas:2TiB",
                 "--tier=sata=/var/lib/strata/tiers/sata:4T:0.00002"] if nondefault else
                ["--tier=ssd=/var/lib/strata/tiers/ssd", "--tier=sata=/var/lib/strata/tiers/sata"])
        check("strata-stored --tier per stored.tiers entry", tiers == want, tiers)
        if nondefault:
            check("strata-stored: two portals, dedup off, 16KiB blocks",
                  "--portal=$(NODE_IP):10810" in args and "--dedup=off" in args
                  and "--block-size=16KiB" in args, args)
            check("strata-stored image override",
                  c["image"] == "registry.example.net/strata/strata-stored:stored-test")
        # copyPriority: idle needs CAP_SYS_NICE (leaving SCHED_IDLE), batch nothing.
        caps = (c.get("securityContext") or {}).get("capabilities") or {}
        want_prio, want_add = ("idle", ["SYS_NICE"]) if nondefault else ("batch", [])
        check(f"strata-stored --copy-priority={want_prio}, capabilities added {want_add}",
              f"--copy-priority={want_prio}" in args and caps.get("add", []) == want_add,
              (args, caps))
        check("strata-stored metrics Service", get("Service", f"{full}-stored-metrics") is not None)

    devices = {d["metadata"]["name"]: d for d in kinds("StorageDevice")}
    if nondefault:
        check("StorageDevice per stored.devices entry",
              sorted(devices) == ["chart-test-dev-1", "chart-test-dev-2"], sorted(devices))
        d1 = devices.get("chart-test-dev-1", {}).get("spec", {})
        check("StorageDevice tiers from stored.tiers: capacity in bytes, price",
              d1.get("tiers") == [
                  {"class": "ssd", "capacityBytes": 100 * 2**30, "pricePerGiBHour": 0.00012},
                  {"class": "sas", "capacityBytes": 2 * 2**40},
                  {"class": "sata", "capacityBytes": 4 * 10**12, "pricePerGiBHour": 0.00002}],
              d1.get("tiers"))
        check("StorageDevice zone as the topology.kubernetes.io/zone label",
              devices.get("chart-test-dev-1", {}).get("metadata", {}).get("labels", {})
              .get("topology.kubernetes.io/zone") == "zone-a", devices.get("chart-test-dev-1"))
        check("StorageDevice endpoint, region, jurisdiction",
              d1.get("endpoint") == "10.0.0.5:17400" and d1.get("region") == "eu-west-1"
              and d1.get("jurisdiction") == "EU", d1)
        d2 = devices.get("chart-test-dev-2", {}).get("spec", {})
        check("StorageDevice with its own tiers, no region, Maintenance",
              d2.get("tiers") == [
                  {"class": "ssd", "capacityBytes": 3840755982336, "pricePerGiBHour": 0.00012},
                  {"class": "sata", "capacityBytes": 16000900661248}]
              and "region" not in d2 and d2.get("desiredState") == "Maintenance", d2)
    else:
        check("no StorageDevice without stored.devices", not devices, sorted(devices))

    # --- CNI
    cni = get("DaemonSet", f"{full}-cni")
    if nondefault:
        check("CNI DaemonSet rendered (cni.enabled)", cni is not None)
        if cni:
            pod = cni["spec"]["template"]["spec"]
            init = container(pod, "install-plugins")
            vols = {v["name"]: v for v in pod["volumes"]}
            check("CNI: an init container copies /opt/strata/cni into the host's CNI bin dir",
                  init is not None and "/opt/strata/cni" in init["command"][-1]
                  and vols["cni-bin"]["hostPath"]["path"] == "/usr/libexec/cni")
    else:
        check("no CNI DaemonSet by default", cni is None)

    # --- ServiceMonitors: rendered only when asked for and served (--api-versions in the test)
    sms = sorted(d["metadata"]["name"] for d in kinds("ServiceMonitor"))
    want = [f"{full}-operator", f"{full}-stored"] if nondefault else []
    check("ServiceMonitors: " + (", ".join(want) or "none"), sms == want, sms)

    # --- RBAC: exact verbs and resources, per component
    stars = []
    for d in kinds("ClusterRole") + kinds("Role"):
        for rule in d.get("rules", []):
            for key in ("verbs", "resources", "apiGroups", "resourceNames"):
                if "*" in rule.get(key, []):
                    stars.append(f"{d['kind']}/{d['metadata']['name']} {key}")
    check("no '*' in any RBAC rule", not stars, stars)
    if kinds("Deployment") and any(d["metadata"]["name"].endswith("-csi-controller")
                                   for d in kinds("Deployment")):
        csi_devices = [d for d in kinds("ClusterRole")
                       if d["metadata"]["name"].endswith("-csi-controller-devices")]
        check("CSI controller ClusterRole: storagedevices get/list/watch",
              len(csi_devices) == 1 and csi_devices[0]["rules"] == [
                  {"apiGroups": ["strata.io"], "resources": ["storagedevices"],
                   "verbs": ["get", "list", "watch"]}], csi_devices)
    for binding in kinds("ClusterRoleBinding") + kinds("RoleBinding"):
        ref = binding["roleRef"]
        subjects = binding["subjects"]
        check(f"{binding['kind']} {binding['metadata']['name']} binds a rendered "
              f"{ref['kind']} to a rendered ServiceAccount",
              get(ref["kind"], ref["name"]) is not None
              and all(get("ServiceAccount", s["name"]) is not None for s in subjects))
    op_role = get("ClusterRole", f"{full}-operator")
    if op_role:
        rules = op_role["rules"]
        check("operator ClusterRole: storagedevices get/list/watch, status update, events",
              {"apiGroups": ["strata.io"], "resources": ["storagedevices"],
               "verbs": ["get", "list", "watch"]} in rules
              and {"apiGroups": ["strata.io"], "resources": ["storagedevices/status"],
                   "verbs": ["update"]} in rules
              and {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]}
              in rules, rules)
    workloads = kinds("Deployment") + kinds("DaemonSet")
    accounts = [w["spec"]["template"]["spec"]["serviceAccountName"] for w in workloads]
    components = {w["metadata"]["labels"]["app.kubernetes.io/component"]: a
                  for w, a in zip(workloads, accounts)}
    check("one ServiceAccount per component", len(set(components.values())) == len(components),
          components)

    check_management_tls(get, container, full, nondefault)

    print(f"check_manifests ({mode}): {passed} passed, {failed} failed")
    return 1 if failed else 0


def check_management_tls(get, container, full, nondefault):
    """managementTls: default, every management API party is --insecure; nondefault (enabled,
    with a CRL Secret and a policy ConfigMap), each mounts its kubernetes.io/tls Secret
    read-only at /etc/strata/management-tls and passes the files."""
    d = "/etc/strata/management-tls"
    parties = [("stored", "DaemonSet", f"{full}-stored", "stored", "chart-test-stored-tls"),
               ("operator", "Deployment", f"{full}-operator", "operator", "chart-test-operator-tls"),
               ("csi controller", "Deployment", f"{full}-csi-controller", "csi-plugin",
                "chart-test-csi-controller-tls")]
    # The CSI node plugins (one DaemonSet per zone): their path checker dials the devices too.
    zones = ["zone-a", "zone-b"] if nondefault else [None]
    parties += [(f"csi node{' ' + z if z else ''}", "DaemonSet",
                 f"{full}-csi-node-{z}" if z else f"{full}-csi-node", "csi-plugin",
                 "chart-test-csi-node-tls") for z in zones]
    for what, kind, name, cname, secret in parties:
        w = get(kind, name)
        if w is None:
            check(f"managementTls: {what} rendered", False)
            continue
        pod = w["spec"]["template"]["spec"]
        c = container(pod, cname)
        args = c.get("args", [])
        if not nondefault:
            check(f"managementTls off: {what} runs --insecure, no certificate flags",
                  "--insecure" in args and not any(a.startswith("--tls-") for a in args), args)
            continue
        want = [f"--tls-cert={d}/tls.crt", f"--tls-key={d}/tls.key"]
        want += ([f"--tls-client-ca={d}/ca.crt", "--authz=/etc/strata/management-authz/authz.json"]
                 if what == "stored" else [f"--tls-ca={d}/ca.crt"])
        # Every component checks certificates against the CRL: the devices their callers',
        # the clients the devices'.
        want += ["--tls-crl=/etc/strata/management-crl/ca.crl"]
        check(f"managementTls on: {what} passes its certificate files, not --insecure",
              all(a in args for a in want) and "--insecure" not in args, args)
        mounts = {m["name"]: m for m in c.get("volumeMounts", [])}
        m = mounts.get("management-tls", {})
        check(f"managementTls on: {what} mounts the Secret read-only at {d}",
              m.get("mountPath") == d and m.get("readOnly") is True, mounts)
        vols = {v["name"]: v for v in pod.get("volumes", [])}
        check(f"managementTls on: {what} takes Secret {secret}",
              vols.get("management-tls", {}).get("secret", {}).get("secretName") == secret, vols)
        check(f"managementTls on: {what} mounts the CRL Secret",
              vols.get("management-crl", {}).get("secret", {}).get("secretName")
              == "chart-test-crl"
              and mounts.get("management-crl", {}).get("readOnly") is True, vols)
        if what == "stored":
            check("managementTls on: stored mounts the CRL Secret and the policy ConfigMap",
                  vols.get("management-crl", {}).get("secret", {}).get("secretName")
                  == "chart-test-crl"
                  and vols.get("management-authz", {}).get("configMap", {}).get("name")
                  == "chart-test-authz", vols)


def pod_labels_match(selector, workload):
    labels = workload["spec"]["template"]["metadata"]["labels"]
    return [labels.get(k) == v for k, v in selector.items()]


if __name__ == "__main__":
    sys.exit(main())
