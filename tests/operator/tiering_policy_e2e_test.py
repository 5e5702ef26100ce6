#!/usr/bin/python3
"""TieringPolicy end to end: the real apiserver, three real strata-stored devices and
strata-operator between them, with a real NBD client (python3-libnbd) reading the volume.

  eu-a: sata only, region eu-west-1, jurisdiction EU   (the volume starts here)
  eu-b: ssd + sata, region eu-west-1, jurisdiction EU
  us-c: ssd (the most room), region us-east-1, jurisdiction US

A LUN owned by PVC db/data (app=postgres) lives on eu-a's sata tier. A CrossDevice policy
promotes it to ssd on sustained reads (ReadIOPS Above 20 for 3 s), allowed in the EU only, and
demotes it to sata once idle (IdleSeconds Above 3). Under a reading client the volume must move
live to eu-b (never us-c, which is refused with a DeviceRefused Event), with no failed client
I/O and the data byte-identical; the operator restarts; once the reads stop the volume sinks to
eu-b's sata tier, and the history shows each move once.

usage: tiering_policy_e2e_test.py OPERATOR STORED ADMIN KUBECONFIG
Every wait polls a condition with a deadline; no fixed ports (stored binds port 0 and reports
it in its ready file; the operator's metrics and health endpoints are off).
"""
import json
import os
import random
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import nbd

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from stored import admin as admin_json, start_stored, stop_stored  # noqa: E402

OPERATOR, STORED, ADMIN, KUBECONFIG = sys.argv[1:5]
os.environ["KUBECONFIG"] = KUBECONFIG
BS = 4096
BLOCKS = 4096  # a 16 MiB LUN
NS = "db"
RUN = "tier-e2e-" + secrets.token_hex(4)
POLICY = RUN
LUN = "pvc-" + RUN
results = {"pass": 0, "fail": 0}


def check(what, ok, detail=""):
    results["pass" if ok else "fail"] += 1
    print(("PASS: " if ok else "FAIL: ") + what + (f" ({detail})" if detail and not ok else ""),
          flush=True)
    return ok


def wait_until(seconds, cond, interval=0.2):
    """Polls `cond` until it is truthy or `seconds` pass; returns its last value."""
    deadline = time.monotonic() + seconds
    while True:
        v = cond()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(interval)  # a bounded poll of a condition, not synchronisation by sleep


def kubectl(*args, stdin=None, check_rc=True):
    out = subprocess.run(["kubectl", "--request-timeout=15s", *args], input=stdin,
                         capture_output=True, text=True, timeout=60)
    if check_rc and out.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)}: {out.stderr.strip()}")
    return out.stdout


def apply(obj):
    kubectl("apply", "-f", "-", stdin=json.dumps(obj))


def policy():
    try:
        return json.loads(kubectl("get", "tieringpolicy", "-n", NS, POLICY, "-o", "json"))
    except (RuntimeError, subprocess.TimeoutExpired):
        return {}


def volume_status():
    for v in policy().get("status", {}).get("volumes", []):
        if v.get("pvc") == "data":
            return v
    return {}


def events(reason):
    try:
        items = json.loads(kubectl("get", "events", "-n", NS, "--field-selector",
                                   f"involvedObject.name={POLICY}", "-o", "json"))["items"]
    except (RuntimeError, subprocess.TimeoutExpired):
        return []
    return [e for e in items if e.get("reason") == reason]


def block(b):
    return (b.to_bytes(8, "little") + RUN.encode()[:8].ljust(8, b".")) * (BS // 16)


def connect(portal):
    host, port = portal.rsplit(":", 1)
    h = nbd.NBD()
    h.set_export_name(LUN)
    h.connect_tcp(host, port)
    return h


class Reader(threading.Thread):
    """Reads random blocks, checking each against the pattern, until stopped."""

    def __init__(self, portal):
        super().__init__(daemon=True)
        self.portal = portal
        self.stop = threading.Event()
        self.reads = self.failed = self.mismatched = 0
        self.errors = []

    def run(self):
        h = connect(self.portal)
        rnd = random.Random(7)
        while not self.stop.is_set():
            b = rnd.randrange(BLOCKS)
            try:
                data = h.pread(BS, b * BS)
            except nbd.Error as e:
                self.failed += 1
                self.errors.append(str(e))
                if self.failed > 20:
                    return
                continue
            self.reads += 1
            if data != block(b):
                self.mismatched += 1
        h.shutdown()


def image_matches(portal):
    h = connect(portal)
    try:
        for b in range(BLOCKS):
            if h.pread(BS, b * BS) != block(b):
                return f"block {b} differs"
        return ""
    finally:
        h.shutdown()


def start_operator(log_path):
    with open(log_path, "a") as log:
        return subprocess.Popen([OPERATOR, "--insecure", "--kubeconfig", KUBECONFIG, "--label-selector",
                                 f"strata.io/test-run={RUN}", "--metrics-addr", "0",
                                 "--health-addr", "0", "--volume-resync", "1",
                                 "--device-resync", "1", "--log-level", "debug"],
                                stdout=log, stderr=log)


def stop_operator(op):
    op.terminate()
    try:
        return op.wait(timeout=30)
    except subprocess.TimeoutExpired:
        op.kill()
        return op.wait()


def device_object(name, ready, region, jurisdiction, tiers):
    return {
        "apiVersion": "strata.io/v1alpha1", "kind": "StorageDevice",
        "metadata": {"name": name, "labels": {"strata.io/test-run": RUN}},
        "spec": {"endpoint": ready["grpc"], "region": region, "jurisdiction": jurisdiction,
                 "tiers": [{"class": c, "capacityBytes": 1 << 30} for c in tiers]},
    }


def main():
    work = tempfile.mkdtemp(prefix="strata-tiering-e2e.")
    procs, op, op_log = [], None, os.path.join(work, "operator.log")
    names = {d: f"{RUN}-{d}" for d in ("eu-a", "eu-b", "us-c")}
    try:
        ready = {}
        for dev, tiers in (("eu-a", ["sata"]), ("eu-b", ["ssd", "sata"]), ("us-c", ["ssd"])):
            os.makedirs(os.path.join(work, dev))
            p, r = start_stored(STORED, work, dev, [f"{t}={work}/{dev}/{t}:1GiB" for t in tiers])
            procs.append(p)
            ready[dev] = r
        check("three strata-stored serve", len(ready) == 3)

        admin_json(ADMIN, ready["eu-a"]["grpc"], "lun", "create", LUN, "--size",
                   f"{BLOCKS * BS}", "--tier", "sata", "--owner", NS,
                   "--meta", "csi.storage.k8s.io/pvc/name=data",
                   "--meta", f"csi.storage.k8s.io/pvc/namespace={NS}")
        h = connect(ready["eu-a"]["nbd"][0])
        for b in range(BLOCKS):
            h.pwrite(block(b), b * BS)
        h.flush()
        h.shutdown()
        check("pattern written through eu-a", image_matches(ready["eu-a"]["nbd"][0]) == "")

        # The namespace stays (without kube-controller-manager a namespace never finishes
        # terminating); the PVC of an earlier, interrupted run goes.
        kubectl("create", "namespace", NS, check_rc=False)
        kubectl("patch", "pvc", "-n", NS, "data", "--type=merge", "-p",
                '{"metadata":{"finalizers":null}}', check_rc=False)
        kubectl("delete", "pvc", "-n", NS, "data", "--ignore-not-found", "--wait=false")
        wait_until(30, lambda: kubectl("get", "pvc", "-n", NS, "data", "--ignore-not-found",
                                       "-o", "name") == "")
        apply({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
               "metadata": {"name": "data", "namespace": NS, "labels": {"app": "postgres"}},
               "spec": {"accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": "16Mi"}}}})
        apply(device_object(names["eu-a"], ready["eu-a"], "eu-west-1", "EU", ["sata"]))
        apply(device_object(names["eu-b"], ready["eu-b"], "eu-west-1", "EU", ["ssd", "sata"]))
        apply(device_object(names["us-c"], ready["us-c"], "us-east-1", "US", ["ssd"]))
        apply({
            "apiVersion": "strata.io/v1alpha1", "kind": "TieringPolicy",
            "metadata": {"name": POLICY, "namespace": NS, "labels": {"strata.io/test-run": RUN}},
            "spec": {
                "selector": {"matchLabels": {"app": "postgres"}},
                "scope": "CrossDevice",
                "rules": [
                    {"name": "promote-hot", "metric": "ReadIOPS", "comparison": "Above",
                     "threshold": 20, "sustainedFor": "3s", "targetTier": "ssd"},
                    {"name": "demote-idle", "metric": "IdleSeconds", "comparison": "Above",
                     "threshold": 3, "sustainedFor": "1s", "targetTier": "sata"},
                ],
                "cooldown": "5s",
                # Other tests' StorageDevices on the shared control plane are not candidates.
                "targetDeviceSelector": {"matchLabels": {"strata.io/test-run": RUN}},
                "allowedJurisdictions": ["EU"],
                "maxConcurrentMigrations": 1,
            },
        })

        op = start_operator(op_log)

        check("policy Active and the volume found on eu-a within 30 s",
              wait_until(30, lambda: policy().get("status", {}).get("phase") == "Active"
                         and volume_status().get("device") == names["eu-a"]),
              json.dumps(policy().get("status")))
        check("idle on sata: nothing moves (already on demote-idle's tier)",
              volume_status().get("tier") == "sata" and "lastMigration" not in
              policy().get("status", {}))
        check("Warning Event DeviceRefused names us-c and its jurisdiction",
              wait_until(20, lambda: any(names["us-c"] in e["message"] and "'US'" in e["message"]
                                         and e["type"] == "Warning"
                                         for e in events("DeviceRefused"))),
              json.dumps([e["message"] for e in events("DeviceRefused")]))
        refused = policy().get("status", {}).get("refusedDevices", [])
        check("status.refusedDevices names us-c", any(names["us-c"] in r for r in refused),
              json.dumps(refused))

        reader = Reader(ready["eu-a"]["nbd"][0])
        t0 = time.monotonic()
        reader.start()
        on_eu_b = wait_until(90, lambda: (lambda v: v.get("device") == names["eu-b"]
                                          and v.get("tier") == "ssd")(volume_status()))
        took = time.monotonic() - t0
        check("under reads, the volume moves to eu-b/ssd within 90 s", on_eu_b,
              json.dumps(policy().get("status")))
        print(f"  moved after {took:.1f} s, {reader.reads} reads so far", flush=True)
        # Keep reading a little through the proxy after the switch, then stop the load.
        seen = reader.reads
        wait_until(30, lambda: reader.reads > seen + 200 or not reader.is_alive())
        reader.stop.set()
        reader.join(timeout=60)
        check("the reader read", reader.reads > 0)
        check("0 failed client I/Os", reader.failed == 0, "; ".join(reader.errors[:3]))
        check("every read returned the pattern", reader.mismatched == 0,
              f"{reader.mismatched} mismatched")

        st = policy().get("status", {})
        history = st.get("history", [])
        check("history records the move eu-a/sata -> eu-b/ssd by promote-hot",
              any(m.get("fromDevice") == names["eu-a"] and m.get("fromTier") == "sata"
                  and m.get("toDevice") == names["eu-b"] and m.get("toTier") == "ssd"
                  and m.get("rule") == "promote-hot" and "ReadIOPS" in m.get("reason", "")
                  for m in history), json.dumps(history))
        check("never moved to us-c", all(m.get("toDevice") != names["us-c"] for m in history))
        us_luns = admin_json(ADMIN, ready["us-c"]["grpc"], "lun", "list")
        check("us-c holds no copy", LUN not in json.dumps(us_luns), json.dumps(us_luns))
        check("Event MoveStarted", wait_until(15, lambda: events("MoveStarted")))
        lun_a = admin_json(ADMIN, ready["eu-a"]["grpc"], "lun", "get", LUN)
        check("eu-a says where the LUN went", lun_a.get("moved_to") == ready["eu-b"]["grpc"],
              json.dumps(lun_a))
        check("data identical through eu-b's portal", image_matches(ready["eu-b"]["nbd"][0]) == "")
        check("data identical through eu-a (proxy)", image_matches(ready["eu-a"]["nbd"][0]) == "")

        # A restart: sustain timers start over, the cooldown and the history come from status,
        # and the promotion is not repeated.
        rc = stop_operator(op)
        op = None
        check("operator stops on SIGTERM with exit 0", rc == 0, f"rc {rc}")
        op = start_operator(op_log)

        # The load has stopped: demote-idle sinks it to sata on eu-b (after the 5 s cooldown).
        sank = wait_until(60, lambda: (lambda v: v.get("device") == names["eu-b"]
                                       and v.get("tier") == "sata")(volume_status()))
        check("idle, the volume sinks to eu-b/sata within 60 s", sank,
              json.dumps(policy().get("status")))
        st = policy().get("status", {})
        check("lastMigration: demote-idle to sata",
              st.get("lastMigration", {}).get("rule") == "demote-idle"
              and st.get("lastMigration", {}).get("toTier") == "sata", json.dumps(st))
        check("history: the promotion then the demotion, nothing twice across the restart",
              [m.get("rule") for m in st.get("history", [])] == ["promote-hot", "demote-idle"],
              json.dumps(st.get("history")))
        check("Event VolumeMoved", wait_until(15, lambda: events("VolumeMoved")))
        check("data identical after the demotion", image_matches(ready["eu-b"]["nbd"][0]) == "")
        check("Ready=True", any(c["type"] == "Ready" and c["status"] == "True"
                                for c in st.get("conditions", [])), json.dumps(st))
        check("printer columns", "CrossDevice" in kubectl("get", "tp", "-n", NS, POLICY))
    finally:
        if op:
            rc = stop_operator(op)
            check("operator stops on SIGTERM with exit 0", rc == 0, f"rc {rc}")
        for what in (["tieringpolicy", "-n", NS, POLICY],
                     ["storagedevice"] + list(names.values())):
            kubectl("delete", *what, "--ignore-not-found", "--wait=false", check_rc=False)
        kubectl("patch", "pvc", "-n", NS, "data", "--type=merge", "-p",
                '{"metadata":{"finalizers":null}}', check_rc=False)
        kubectl("delete", "pvc", "-n", NS, "data", "--ignore-not-found", "--wait=false",
                check_rc=False)
        for p in procs:
            stop_stored(p)
        failed = results["fail"] > 0
        if failed and os.path.exists(op_log):
            print("---- operator log (tail) ----")
            with open(op_log) as f:
                print("".join(f.readlines()[-60:]))
        shutil.rmtree(work, ignore_errors=True)
    print(f"{results['pass']} passed, {results['fail']} failed")
    return 1 if results["fail"] else 0


if __name__ == "__main__":
    sys.exit(main())
