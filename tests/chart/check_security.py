#!/usr/bin/env python3
"""Least privilege in what `helm template` rendered from charts/strata (issue #14).

Usage: check_security.py SECURITY_MD MANIFEST.yaml...

RBAC: prints, for every ServiceAccount of the chart, each rule it is granted through the chart's
(Cluster)RoleBindings (scope, API group, resource, names, verbs), and fails on "*" in verbs,
resources, apiGroups or nonResourceURLs, on verbs that hand out more than they name (escalate,
bind, impersonate), on any access to Secrets, on bindings to roles the chart does not define, and
on a pod that mounts a ServiceAccount token its component has no use for.

Containers: the control-plane components (the operator, the CSI controller and its sidecars) run
as non-root with a read-only root file system, no privilege escalation, every capability dropped
and the RuntimeDefault seccomp profile. The node components (DaemonSets) run under RuntimeDefault
too (a privileged container excepted: it is unconfined whatever the pod says), and each privilege
one of their containers keeps (privileged, root, an added capability, the host's network, a host
path) must have its row in SECURITY_MD's table "| Component | Container | Privilege | Why |".

Prints one PASS/FAIL line per check and "N passed, N failed"; exits 1 if any failed.
"""
import re
import sys

import yaml

# Deployments whose every container must be unprivileged, by name suffix.
CONTROL_PLANE = ("-operator", "-csi-controller")
# Verbs that grant more than the resource they name.
BROAD_VERBS = {"escalate", "bind", "impersonate"}

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


def load(paths):
    docs = []
    for p in paths:
        with open(p) as f:
            docs.extend((p, d) for d in yaml.safe_load_all(f) if d)
    return docs


def rbac(source, docs):
    """The table of every ServiceAccount's rules in one rendering; the checks on it."""
    roles = {}
    for d in docs:
        if d["kind"] == "ClusterRole":
            roles[("ClusterRole", None, d["metadata"]["name"])] = d
        elif d["kind"] == "Role":
            roles[("Role", d["metadata"].get("namespace"), d["metadata"]["name"])] = d
    accounts = {d["metadata"]["name"] for d in docs if d["kind"] == "ServiceAccount"}
    grants = {sa: [] for sa in accounts}  # sa -> [(scope, rule)]
    for d in docs:
        if d["kind"] not in ("ClusterRoleBinding", "RoleBinding"):
            continue
        ref = d["roleRef"]
        ns = d["metadata"].get("namespace")
        key = (ref["kind"], None if ref["kind"] == "ClusterRole" else ns, ref["name"])
        role = roles.get(key)
        check(f"{source}: {d['kind']} {d['metadata']['name']} binds a role the chart defines "
              f"({ref['kind']} {ref['name']})", role is not None)
        if role is None:
            continue
        scope = "cluster" if d["kind"] == "ClusterRoleBinding" else f"ns {ns}"
        for s in d.get("subjects", []):
            if s["kind"] != "ServiceAccount":
                check(f"{source}: {d['metadata']['name']} binds only ServiceAccounts", False,
                      f"{s['kind']} {s['name']}")
                continue
            for rule in role.get("rules") or []:
                grants.setdefault(s["name"], []).append((scope, rule))

    print(f"-- RBAC of each ServiceAccount ({source})")
    rows = [("ServiceAccount", "scope", "apiGroup", "resource", "names", "verbs")]
    for sa in sorted(grants):
        if not grants[sa]:
            rows.append((sa, "-", "-", "(no API access)", "-", "-"))
        # One row per (scope, group, resource, names): the union of the verbs of every role.
        merged = {}
        for scope, rule in grants[sa]:
            for group in rule.get("apiGroups", ["-"]):
                for res in rule.get("resources", rule.get("nonResourceURLs", ["-"])):
                    key = (scope, group or "core", res,
                           ",".join(rule.get("resourceNames", [])) or "(any)")
                    merged.setdefault(key, set()).update(rule.get("verbs", []))
        for key in sorted(merged):
            rows.append((sa, *key, ",".join(sorted(merged[key]))))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())

    for sa, gs in sorted(grants.items()):
        wild, broad, secrets = [], [], []
        for _, rule in gs:
            for field in ("verbs", "resources", "apiGroups", "nonResourceURLs"):
                if "*" in (rule.get(field) or []) or any("*" in x for x in rule.get(field) or []):
                    wild.append(f"{field}={rule.get(field)}")
            broad += sorted(BROAD_VERBS & set(rule.get("verbs", [])))
            if "" in rule.get("apiGroups", []) and "secrets" in rule.get("resources", []):
                secrets.append(",".join(rule.get("verbs", [])))
        check(f"{source}: {sa}: no '*' in verbs, resources, apiGroups", not wild, "; ".join(wild))
        check(f"{source}: {sa}: no escalate, bind or impersonate", not broad, ",".join(broad))
        check(f"{source}: {sa}: no access to Secrets", not secrets, ";".join(secrets))
    return grants


def pod_spec(d):
    return d["spec"]["template"]["spec"]


def containers(pod):
    return pod.get("initContainers", []) + pod.get("containers", [])


def effective(pod, c, key):
    """A container's securityContext field, or the pod's where the container leaves it out."""
    sc = c.get("securityContext") or {}
    if key in sc:
        return sc[key]
    return (pod.get("securityContext") or {}).get(key)


def seccomp(pod, c):
    prof = effective(pod, c, "seccompProfile") or {}
    return prof.get("type")


def privileges(pod, c):
    """What a container keeps beyond an unprivileged one: tokens as docs/security.md spells them."""
    out = []
    sc = c.get("securityContext") or {}
    if sc.get("privileged"):
        out.append("privileged")
    uid = effective(pod, c, "runAsUser")
    if uid == 0 or (uid is None and not effective(pod, c, "runAsNonRoot")):
        out.append("root")
    for cap in (sc.get("capabilities") or {}).get("add", []):
        out.append(cap if cap.startswith("CAP_") else "CAP_" + cap)
    if pod.get("hostNetwork"):
        out.append("hostNetwork")
    host_paths = {v["name"] for v in pod.get("volumes", []) if "hostPath" in v}
    if any(m["name"] in host_paths for m in c.get("volumeMounts", [])):
        out.append("hostPath")
    return out


def documented(security_md):
    """(container, privilege token) pairs with a reason, from the table in docs/security.md."""
    pairs = set()
    with open(security_md) as f:
        for line in f:
            cells = [x.strip() for x in line.strip().strip("|").split("|")]
            if len(cells) != 4 or not line.lstrip().startswith("|") or set(cells[0]) <= {"-", " "}:
                continue
            _, container, privilege, why = cells
            if not why or why.startswith("---"):
                continue
            for name in re.findall(r"`([^`]+)`", container):
                for token in re.findall(r"[A-Za-z_]+", privilege):
                    pairs.add((name, token))
    return pairs


def workloads(source, docs, grants, docs_pairs):
    for d in docs:
        if d["kind"] not in ("Deployment", "DaemonSet", "StatefulSet"):
            continue
        name = d["metadata"]["name"]
        pod = pod_spec(d)
        sa = pod.get("serviceAccountName")
        # A token only where the component calls the API.
        if not grants.get(sa):
            check(f"{source}: {name}: no ServiceAccount token mounted (its account has no RBAC)",
                  pod.get("automountServiceAccountToken") is False,
                  f"automountServiceAccountToken={pod.get('automountServiceAccountToken')}")
        control_plane = d["kind"] == "Deployment" and name.endswith(CONTROL_PLANE)
        for c in containers(pod):
            where = f"{source}: {name}/{c['name']}"
            sc = c.get("securityContext") or {}
            caps = sc.get("capabilities") or {}
            if control_plane:
                uid = effective(pod, c, "runAsUser")
                check(f"{where}: non-root", effective(pod, c, "runAsNonRoot") is True
                      and uid not in (None, 0), f"runAsNonRoot/runAsUser: {uid}")
                check(f"{where}: read-only root file system",
                      sc.get("readOnlyRootFilesystem") is True)
                check(f"{where}: no privilege escalation",
                      sc.get("allowPrivilegeEscalation") is False)
                check(f"{where}: capabilities drop ALL, add none",
                      "ALL" in caps.get("drop", []) and not caps.get("add"), caps)
                check(f"{where}: not privileged", not sc.get("privileged"))
                check(f"{where}: seccomp RuntimeDefault", seccomp(pod, c) == "RuntimeDefault",
                      seccomp(pod, c))
                check(f"{where}: no host network, no host paths", not privileges(pod, c),
                      privileges(pod, c))
                continue
            if d["kind"] != "DaemonSet":
                check(f"{where}: a known kind of workload", False, d["kind"])
                continue
            # Node components: each privilege documented; the rest as tight as the others.
            kept = privileges(pod, c)
            missing = [p for p in kept if (c["name"], p) not in docs_pairs]
            check(f"{where}: each privilege it keeps is documented ({', '.join(kept) or 'none'})",
                  not missing, f"no row for {missing} in docs/security.md")
            if sc.get("privileged"):
                continue  # unconfined by definition; documented above
            check(f"{where}: seccomp RuntimeDefault", seccomp(pod, c) == "RuntimeDefault",
                  seccomp(pod, c))
            check(f"{where}: no privilege escalation", sc.get("allowPrivilegeEscalation") is False)
            check(f"{where}: read-only root file system", sc.get("readOnlyRootFilesystem") is True)
            check(f"{where}: capabilities drop ALL (adds only what is documented)",
                  "ALL" in caps.get("drop", []), caps)


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    security_md, manifests = sys.argv[1], sys.argv[2:]
    docs_pairs = documented(security_md)
    check(f"{security_md} has a privilege table", bool(docs_pairs))
    for path in manifests:
        docs = [d for _, d in load([path])]
        grants = rbac(path.rsplit("/", 1)[-1], docs)
        workloads(path.rsplit("/", 1)[-1], docs, grants, docs_pairs)
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
