#!/usr/bin/env python3
"""TieringPolicy reaction time: from the moment a volume's read IOPS cross the policy's threshold
(as the device reports them, polled every 50 ms) to the moment its move starts (the LUN's
migration RUNNING or its tier changed), minus the rule's sustainedFor; over ROUNDS promotions.
The limit it is compared with in the same run: one inventory period (--volume-resync) plus one
reconcile, the most the design allows. Load: fio's nbd engine, rate-limited random reads.

Run through bench/operator/tiering_reaction.sh (a private control plane)."""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tests", "lib"))
from stored import admin, start_stored, stop_stored  # noqa: E402

build = sys.argv[1]
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
resync = float(os.environ.get("STRATA_BENCH_RESYNC", "1"))
kubeconfig = os.environ["STRATA_KUBECONFIG"]
THRESHOLD = 300
SUSTAINED = 2.0
ADMIN = os.path.join(build, "storage", "strata-admin")


def kubectl(*args, stdin=None):
    return subprocess.run(["kubectl", "--kubeconfig", kubeconfig, "--request-timeout=30s", *args],
                          input=stdin, capture_output=True, text=True, check=True).stdout


def wait(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)  # polling with a deadline
    raise RuntimeError(f"timed out after {timeout}s waiting for {what}")


work = tempfile.mkdtemp(prefix="strata-bench-react.")
procs = []
try:
    stored, ready = start_stored(os.path.join(build, "storage", "strata-stored"), work, "react",
                                 [f"ssd={work}/ssd:4GiB", f"sata={work}/sata:4GiB"],
                                 log_level="warn")
    procs.append(stored)
    grpc, nbd = ready["grpc"], ready["nbd"][0]
    admin(ADMIN, grpc, "lun", "create", "pvc-hot", "--size", "256MiB", "--tier", "sata",
          "--owner", "bench", "--meta", "csi.storage.k8s.io/pvc/name=hot",
          "--meta", "csi.storage.k8s.io/pvc/namespace=bench")
    kubectl("create", "namespace", "bench")
    kubectl("apply", "-f", "-", stdin=f"""
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: hot, namespace: bench, labels: {{app: db}}}}
spec: {{accessModes: [ReadWriteOnce], volumeMode: Block, resources: {{requests: {{storage: 256Mi}}}}}}
---
apiVersion: strata.io/v1alpha1
kind: StorageDevice
metadata: {{name: react}}
spec:
  endpoint: "{grpc}"
  tiers: [{{class: ssd, capacityBytes: 4294967296}}, {{class: sata, capacityBytes: 4294967296}}]
---
apiVersion: strata.io/v1alpha1
kind: TieringPolicy
metadata: {{name: hot, namespace: bench}}
spec:
  selector: {{matchLabels: {{app: db}}}}
  cooldown: 1s
  rules:
    - {{name: promote, metric: ReadIOPS, comparison: Above, threshold: {THRESHOLD}, sustainedFor: {int(SUSTAINED)}s, targetTier: ssd}}
""")
    log = open(os.path.join(work, "operator.log"), "w")
    op = subprocess.Popen([os.path.join(build, "operator", "strata-operator"), "--insecure", "--kubeconfig",
                           kubeconfig, "--metrics-addr", "0", "--health-addr", "0",
                           "--log-level", "warn", "--volume-resync", str(resync)],
                          stdout=log, stderr=log)
    procs.append(op)

    def lun():
        return admin(ADMIN, grpc, "lun", "get", "pvc-hot")

    def read_iops():
        return admin(ADMIN, grpc, "lun", "stats", "pvc-hot")["read"].get("iops", 0)

    reactions = []
    for r in range(rounds):
        # Start from sata and quiet: the previous round's move finished, the load gone as both the
        # device and the operator see it (else the policy would promote again at once), the
        # volume moved back by hand, and the operator's sample showing it idle on sata.
        wait(lambda: lun().get("migration", {}).get("state") != "MIGRATION_STATE_RUNNING", 60,
             "the previous move to finish")
        wait(lambda: read_iops() < THRESHOLD / 2, 30, "the LUN to be quiet")
        last_status = [None]

        def policy_sees(tier):
            st = json.loads(kubectl("get", "tieringpolicy", "hot", "-n", "bench", "-o", "json"))
            vols = st.get("status", {}).get("volumes", [])
            last_status[0] = vols
            return (vols and vols[0].get("tier") == tier and vols[0].get("readIOPS", 0) == 0
                    and vols[0].get("state") in ("Idle", "Cooldown"))
        try:
            wait(lambda: policy_sees("ssd" if r else "sata"), 60, "the policy to see it quiet")
            if lun()["tier"] != "TIER_CLASS_SATA":
                admin(ADMIN, grpc, "lun", "migrate", "pvc-hot", "--tier", "sata", "--wait")
            wait(lambda: policy_sees("sata"), 60, "the policy to see it quiet on sata")
        except RuntimeError:
            print("policy status volumes:", json.dumps(last_status[0]))
            raise
        fio = subprocess.Popen(["fio", "--name=load", "--ioengine=nbd",
                                f"--uri=nbd://{nbd}/pvc-hot", "--rw=randread", "--bs=4k",
                                "--iodepth=4", f"--rate_iops={THRESHOLD * 4}", "--time_based",
                                "--runtime=120", "--output=/dev/null"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait(lambda: read_iops() > THRESHOLD, 30, "read IOPS above the threshold")
            crossed = time.monotonic()
            wait(lambda: (lambda l: l["tier"] == "TIER_CLASS_SSD" or
                          l.get("migration", {}).get("state") == "MIGRATION_STATE_RUNNING")(lun()),
                 60, "the move to start")
            started = time.monotonic()
        finally:
            fio.terminate()
            fio.wait(timeout=30)
        reactions.append(started - crossed - SUSTAINED)
        print(f"round {r + 1}: move started {started - crossed:.2f} s after the crossing "
              f"({reactions[-1]:.2f} s beyond sustainedFor {SUSTAINED:g} s)", flush=True)
    limit = resync + 0.5
    print()
    print("| TieringPolicy reaction (beyond sustainedFor) | measured | limit |")
    print("|---|---|---|")
    print(f"| median of {rounds} | {statistics.median(reactions):.2f} s | {limit:.1f} s "
          f"(--volume-resync {resync:g} s + one reconcile) |")
    print(f"| max | {max(reactions):.2f} s | |")
finally:
    for p in reversed(procs):
        if p is procs[0]:
            stop_stored(p)
        else:
            p.terminate()
            p.wait(timeout=30)
