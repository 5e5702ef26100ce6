#!/usr/bin/python3
"""LUN migration rate against cp of the same bytes, and a client's read latency
while a LUN moves, against the same client idle. Not a test: prints markdown.

  bench/storage/migration_bench.py STORED ADMIN [--dir /var/tmp] [--mib 512]
      [--stored-arg=FLAG ...] [--compare-caps auto,128MiB,0 [--rounds 3]]

Moves: between two tiers of one device, then to a second device. Both devices keep
their tiers in --dir (one file system, as cp's source and target are).

With --compare-caps, the whole measurement runs once per strata-stored
--copy-rate-with-clients value per round (interleaved, so load drift hits each
alike), and a table compares the device move and the reader's p99 across them: the
copy cap that follows the clients' latency (auto) against the fixed cap and none.
"""
import argparse
import json
import os
import random
import signal
import statistics
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
                     "device move is paced by that cap)")
ap.add_argument("--compare-caps", default="",
                help="comma-separated --copy-rate-with-clients values to compare, e.g. "
                     "auto,128MiB,0 (the first is measured against the others)")
ap.add_argument("--rounds", type=int, default=1, help="with --compare-caps: interleaved rounds")
args = ap.parse_args()
BS = 4096


def start(work, name, extra=()):
    ready = f"{work}/{name}.ready"
    p = subprocess.Popen([args.stored, "--device", name, "--tier", f"ssd={work}/{name}/ssd:8GiB",
                          "--tier", f"sata={work}/{name}/sata:8GiB", "--portal", "127.0.0.1:0",
                          "--grpc", "127.0.0.1:0", "--insecure", "--ready-file", ready, "--log-level", "warn",
                          *args.stored_arg, *extra])
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


def measure(extra=()):
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

    a, ra = start(work, "a", extra)
    b, rb = start(work, "b", extra)
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
    return {"cp": cp_rate, "tier": tier_rate, "tier_engine": tier_engine_rate, "dev": dev_rate,
            "lat": r.lat}


def report(res):
    cp_rate, tier_rate, tier_engine_rate, dev_rate = (res[k] for k in ("cp", "tier", "tier_engine", "dev"))
    r_lat = res["lat"]
    print(f"{args.mib} MiB of random data in {args.dir}\n")
    print("| what | MiB/s | vs cp |\n|---|---|---|")
    print(f"| cp + sync (same file system) | {cp_rate:.0f} | 1.00 |")
    print(f"| tier move ssd -> sata (CLI wall time, incl. start and final flush) | {tier_rate:.0f} | {tier_rate / cp_rate:.2f} |")
    print(f"| tier move ssd -> sata (mover's own rate) | {tier_engine_rate:.0f} | {tier_engine_rate / cp_rate:.2f} |")
    print(f"| device move (gRPC stream, loopback) | {dev_rate:.0f} | {dev_rate / cp_rate:.2f} |")
    print("\n| client 4 KiB QD1 reads | n | p50 us | p99 us | p99 vs idle |\n|---|---|---|---|---|")
    idle99 = pct(r_lat["idle"], 0.99)
    for ph, xs in r_lat.items():
        print(f"| {ph} | {len(xs)} | {pct(xs, .5):.0f} | {pct(xs, .99):.0f} | {pct(xs, .99) / idle99:.1f}x |")


def compare(caps):
    rows = {c: [] for c in caps}
    for i in range(args.rounds):
        for c in caps:
            res = measure([f"--copy-rate-with-clients={c}"])
            idle99 = pct(res["lat"]["idle"], 0.99)
            move99 = pct(res["lat"]["device move"], 0.99)
            rows[c].append((res["dev"], res["cp"], idle99, move99))
            print(f"round {i + 1} --copy-rate-with-clients={c}: device move {res['dev']:.0f} MiB/s "
                  f"({res['dev'] / res['cp']:.2f}x cp {res['cp']:.0f}), reader p99 idle "
                  f"{idle99:.0f} us, during the device move {move99:.0f} us "
                  f"({move99 / idle99:.1f}x)", flush=True)

    def med(c, f):
        return statistics.median(f(*row) for row in rows[c])

    print(f"\n{args.mib} MiB in {args.dir}, a QD1 4 KiB reader throughout; medians of "
          f"{args.rounds} interleaved rounds\n")
    head = "| --copy-rate-with-clients | device move MiB/s | vs cp | reader p99 idle / during (us) | p99 vs idle |"
    peers = caps[1:]
    head += "".join(f" move vs {p} |" for p in peers)
    print(head + "\n|" + "---|" * (5 + len(peers)))
    for c in caps:
        line = (f"| {c} | {med(c, lambda d, cp, i, m: d):.0f} | {med(c, lambda d, cp, i, m: d / cp):.2f} | "
                f"{med(c, lambda d, cp, i, m: i):.0f} / {med(c, lambda d, cp, i, m: m):.0f} | "
                f"{med(c, lambda d, cp, i, m: m / i):.1f}x |")
        for p in peers:
            ratios = [rows[c][k][0] / rows[p][k][0] for k in range(args.rounds)]
            line += f" {statistics.median(ratios):.2f} |"
        print(line)
    first = caps[0]
    print(f"\ngoal for {first}: reader p99 during the move <= 3x idle: "
          f"{med(first, lambda d, cp, i, m: m / i):.1f}x; device move vs "
          + ", ".join(f"{p}: {statistics.median(rows[first][k][0] / rows[p][k][0] for k in range(args.rounds)):.2f}x"
                      for p in peers))


if args.compare_caps:
    compare([c.strip() for c in args.compare_caps.split(",") if c.strip()])
else:
    report(measure())
