#!/usr/bin/python3
"""A LUN moves while a real NBD client (python3-libnbd) keeps writing and reading:
first between two tiers of one strata-stored, then to a second strata-stored. Every
read is checked against what the client wrote; no request may fail; the final image
is identical through the old device (now a proxy) and through the new one's portal;
the LUN's metadata goes with it.

usage: stored_migration_test.py STORED ADMIN
Prints client latency percentiles idle and during each move (for docs/benchmarks.md).
"""
import os
import random
import subprocess
import sys
import tempfile
import threading
import time

import nbd

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from stored import admin as admin_json, start_stored, stop_stored  # noqa: E402

BS = 4096
BLOCKS = 8192  # a 32 MiB LUN
STORED, ADMIN = sys.argv[1], sys.argv[2]
results = {"pass": 0, "fail": 0}


def check(what, ok, detail=""):
    results["pass" if ok else "fail"] += 1
    print(("PASS: " if ok else "FAIL: ") + what + (f" ({detail})" if detail and not ok else ""))


def start(work, name):
    return start_stored(STORED, work, name, [f"ssd={work}/{name}/ssd:1GiB",
                                              f"sata={work}/{name}/sata:1GiB"], portals=2)


def admin(server, *args):
    return admin_json(ADMIN, server, *args)


def connect(portal, export="mig"):
    host, port = portal.rsplit(":", 1)
    h = nbd.NBD()
    h.set_export_name(export)
    h.connect_tcp(host, port)
    return h


def block(v, b):
    return (v.to_bytes(4, "little") + b.to_bytes(4, "little")) * (BS // 8)


class Client(threading.Thread):
    """Writes and reads random blocks; records latencies per phase."""

    def __init__(self, portal, model):
        super().__init__()
        self.h = connect(portal)
        self.model = model
        self.stop = threading.Event()
        self.errors = []
        self.phase = "idle"
        self.lat = {}
        self.ops = 0

    def run(self):
        rng = random.Random(7)
        while not self.stop.is_set():
            b = rng.randrange(BLOCKS)
            t0 = time.perf_counter()
            try:
                if rng.random() < 0.5:
                    v = rng.randrange(1, 1 << 30)
                    self.h.pwrite(block(v, b), b * BS)
                    self.model[b] = v
                else:
                    data = self.h.pread(BS, b * BS)
                    want = block(self.model[b], b) if self.model[b] else bytes(BS)
                    if data != want:
                        self.errors.append(f"block {b} read back wrong in phase {self.phase}")
            except nbd.Error as e:
                self.errors.append(f"{self.phase}: {e}")
                return
            self.lat.setdefault(self.phase, []).append(time.perf_counter() - t0)
            self.ops += 1


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))] * 1e6 if xs else 0


def main():
    work = tempfile.mkdtemp(prefix="strata-mig-")
    a, ra = start(work, "dev-a")
    b, rb = start(work, "dev-b")
    # A third device with room for little more than a filler LUN: a move there runs out
    # of space part-way through its (pipelined, several-stream) copy.
    c, rc = start_stored(STORED, work, "dev-c", [f"ssd={work}/dev-c/ssd:40MiB"])
    try:
        admin(rc["grpc"], "lun", "create", "fill", "--size", "36MiB")
        hc = connect(rc["nbd"][0], "fill")
        for i in range(0, 36 << 20, 1 << 20):
            hc.pwrite(bytes([0xEE]) * 8 + i.to_bytes(8, "little") * ((1 << 20) // 8 - 1), i)
        hc.flush()
        hc.shutdown()

        meta = {"csi.storage.k8s.io/pvc/name": "data-mig-0",
                "csi.storage.k8s.io/pvc/namespace": "shop"}
        admin(ra["grpc"], "lun", "create", "mig", "--size", str(BLOCKS * BS), "--dedup",
              "--tier", "ssd", *[f"--meta={k}={v}" for k, v in meta.items()])
        model = [0] * BLOCKS
        h = connect(ra["nbd"][0])
        for i in range(0, BLOCKS, 3):  # pre-fill a third of it
            model[i] = i + 1
            h.pwrite(block(i + 1, i), i * BS)
        h.flush()
        h.shutdown()

        client = Client(ra["nbd"][1], model)  # the second portal: multipath
        client.start()
        # Deadlines for progress, not sleeps: generous, since "client kept going" below needs
        # both 300-op windows to fill even with sanitizers on a loaded 2-core host.
        deadline = time.monotonic() + 60
        while client.ops < 300 and time.monotonic() < deadline:
            time.sleep(0.01)
        client.phase = "tier move"
        m = admin(ra["grpc"], "lun", "migrate", "mig", "--tier", "sata", "--wait")
        check("tier move done", m["state"] == "MIGRATION_STATE_DONE", m)
        check("LUN on sata", admin(ra["grpc"], "lun", "get", "mig")["tier"] == "TIER_CLASS_SATA")
        # The real copy (NBD writes into the target's move export, or WriteLunData streams
        # with --move-data-path grpc, several in flight) breaks mid-pass: the
        # move fails cleanly, the partial copy goes, the LUN stays whole and served here.
        client.phase = "failed move"
        m = admin(ra["grpc"], "lun", "migrate", "mig", "--to-device", rc["grpc"], "--wait")
        check("move to a device that fills up fails", m["state"] == "MIGRATION_STATE_FAILED", m)
        check("the failure says why", "full" in m.get("message", ""), m.get("message"))
        check("partial copy removed from the full device",
              [x["name"] for x in admin(rc["grpc"], "lun", "list").get("luns", [])] == ["fill"])
        check("LUN still here after the failed move",
              admin(ra["grpc"], "lun", "get", "mig").get("moved_to", "") == "")
        client.phase = "device move"
        m = admin(ra["grpc"], "lun", "migrate", "mig", "--to-device", rb["grpc"], "--wait")
        check("device move done", m["state"] == "MIGRATION_STATE_DONE", m)
        # Verified before the switch, under the client's writes: the whole LUN compared.
        check("device move verified", int(m.get("verified_bytes", 0)) == BLOCKS * BS, m)
        # --move-data-path auto (the default): the bulk data went over NBD, not WriteLunData.
        with open(os.path.join(work, "dev-a.log")) as f:
            log = f.read()
        check("device move copied over NBD", "copying over NBD" in log
              and "copying over WriteLunData" not in log, log[-2000:])
        client.phase = "proxied"
        start_ops = client.ops
        deadline = time.monotonic() + 60
        while client.ops < start_ops + 300 and time.monotonic() < deadline:
            time.sleep(0.01)
        client.stop.set()
        client.join()
        check("no client errors", not client.errors, client.errors[:5])
        check("client kept going through both moves", client.ops > 600, client.ops)

        lun_a = admin(ra["grpc"], "lun", "get", "mig")
        lun_b = admin(rb["grpc"], "lun", "get", "mig")
        check("source says where the LUN went", lun_a["moved_to"] == rb["grpc"], lun_a["moved_to"])
        check("same WWN on the target", lun_a["wwn"] == lun_b["wwn"])
        check("metadata carried by the tier and device moves", lun_b.get("metadata") == meta,
              lun_b.get("metadata"))
        check("source freed its blocks",
              all(t["used_bytes"] == "0" for t in admin(ra["grpc"], "device", "status")["tiers"]))
        expect = b"".join(block(v, i) if v else bytes(BS) for i, v in enumerate(model))
        for name, portal in (("old device (proxy)", ra["nbd"][0]), ("new device", rb["nbd"][0]),
                             ("new device, second portal", rb["nbd"][1])):
            h = connect(portal)
            img = h.pread(BLOCKS * BS, 0)
            h.shutdown()
            check(f"final image through the {name}", img == expect)

        print("client latency (us):")
        for phase, xs in client.lat.items():
            print(f"  {phase:12s} n={len(xs):6d} p50={pct(xs, .5):8.1f} p99={pct(xs, .99):8.1f}")
    finally:
        for p in (a, b, c):
            stop_stored(p)
    print(f"{results['pass']} passed, {results['fail']} failed")
    if results["fail"] == 0:
        subprocess.run(["rm", "-rf", work])
    return 1 if results["fail"] else 0


if __name__ == "__main__":
    sys.exit(main())
