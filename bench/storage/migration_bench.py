#!/usr/bin/python3
"""LUN migration rate against cp of the same bytes, and a client's read latency
while a LUN moves, against the same client idle. Not a test: prints markdown.

  bench/storage/migration_bench.py STORED ADMIN [--dir /var/tmp] [--mib 512]

Moves: between two tiers of one device, then to a second device. Both devices keep
their tiers in --dir (one file system, as cp's source and target are).
"""
import argparse
import json
import os
import random
import signal
import subprocess
import tempfile
import threading
import time

import nbd

ap = argparse.ArgumentParser()
ap.add_argument("stored")
ap.add_argument("admin")
ap.add_argument("--dir", default="/var/tmp")
ap.add_argument("--mib", type=int, default=512)
ap.add_argument("--stored-arg", action="append", default=[],
                help="an extra strata-stored flag for both devices, e.g. "
                     "--stored-arg=--copy-rate-with-clients=0 (the reader runs throughout, so the "
                     "device move is paced by that cap: 128MiB/s by default)")
args = ap.parse_args()
BS = 4096


def start(work, name):
    ready = f"{work}/{name}.ready"
    p = subprocess.Popen([args.stored, "--device", name, "--tier", f"ssd={work}/{name}/ssd:8GiB",
                          "--tier", f"sata={work}/{name}/sata:8GiB", "--portal", "127.0.0.1:0",
                          "--grpc", "127.0.0.1:0", "--insecure", "--ready-file", ready, "--log-level", "warn",
                          *args.stored_arg])
    while not (os.path.exists(ready) and os.path.getsize(ready)):
        time.sleep(0.02)
    return p, json.load(open(ready))


def admin(g, *a):
    return json.loads(subprocess.run([args.admin, "--insecure", "--server", g, "-o", "json", *a], check=True,
                                     capture_output=True, text=True).stdout)


class Reader(threading.Thread):
    def __init__(self, portal):
        super().__init__()
        host, port = portal.rsplit(":", 1)
        self.h = nbd.NBD()
        self.h.set_export_name("m")
        self.h.connect_tcp(host, port)
        self.lat, self.phase, self.stop = {}, "idle", threading.Event()

    def run(self):
        rng = random.Random(1)
        blocks = args.mib * 256
        while not self.stop.is_set():
            t0 = time.perf_counter()
            self.h.pread(BS, rng.randrange(blocks) * BS)
            self.lat.setdefault(self.phase, []).append(time.perf_counter() - t0)


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))] * 1e6


def main():
    work = tempfile.mkdtemp(prefix="strata-migbench-", dir=args.dir)
    size = args.mib << 20
    src = f"{work}/src.img"
    subprocess.run(["head", "-c", str(size), "/dev/urandom"], stdout=open(src, "wb"), check=True)
    subprocess.run(["sync"])
    t0 = time.perf_counter()
    subprocess.run(["cp", src, f"{work}/copy.img"], check=True)
    subprocess.run(["sync", f"{work}/copy.img"], check=True)
    cp_rate = size / (time.perf_counter() - t0) / 2**20
    os.unlink(f"{work}/copy.img")

    a, ra = start(work, "a")
    b, rb = start(work, "b")
    try:
        admin(ra["grpc"], "lun", "create", "m", "--size", f"{args.mib}MiB", "--tier", "ssd")
        subprocess.run(["nbdcopy", src, f"nbd://{ra['nbd'][0]}/m"], check=True)
        r = Reader(ra["nbd"][0])
        r.start()
        time.sleep(2)  # a benchmark's idle baseline window, not synchronisation
        r.phase = "tier move"
        t0 = time.perf_counter()
        m = admin(ra["grpc"], "lun", "migrate", "m", "--tier", "sata", "--wait")
        tier_rate = size / (time.perf_counter() - t0) / 2**20
        assert m["state"] == "MIGRATION_STATE_DONE", m
        tier_engine_rate = m["bytes_per_second"] / 2**20
        r.phase = "device move"
        t0 = time.perf_counter()
        m = admin(ra["grpc"], "lun", "migrate", "m", "--to-device", rb["grpc"], "--wait")
        dev_rate = size / (time.perf_counter() - t0) / 2**20
        assert m["state"] == "MIGRATION_STATE_DONE", m
        r.stop.set()
        r.join()
    finally:
        for p in (a, b):
            p.send_signal(signal.SIGTERM)
            p.wait()
        subprocess.run(["rm", "-rf", work])
    print(f"{args.mib} MiB of random data in {args.dir}\n")
    print("| what | MiB/s | vs cp |\n|---|---|---|")
    print(f"| cp + sync (same file system) | {cp_rate:.0f} | 1.00 |")
    print(f"| tier move ssd -> sata (CLI wall time, incl. start and final flush) | {tier_rate:.0f} | {tier_rate / cp_rate:.2f} |")
    print(f"| tier move ssd -> sata (mover's own rate) | {tier_engine_rate:.0f} | {tier_engine_rate / cp_rate:.2f} |")
    print(f"| device move (gRPC stream, loopback) | {dev_rate:.0f} | {dev_rate / cp_rate:.2f} |")
    print("\n| client 4 KiB QD1 reads | n | p50 us | p99 us | p99 vs idle |\n|---|---|---|---|---|")
    idle99 = pct(r.lat["idle"], 0.99)
    for ph, xs in r.lat.items():
        print(f"| {ph} | {len(xs)} | {pct(xs, .5):.0f} | {pct(xs, .99):.0f} | {pct(xs, .99) / idle99:.1f}x |")


main()
