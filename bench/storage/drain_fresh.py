#!/usr/bin/python3
"""Fresh drains, build against build: where a verified drain's CPU goes and where the host
idles, with drain_bench.py's workload (LUNs of random data drained from a fresh device onto a
fresh device, --parallel moves at once, tiers and cp on --dir) but nothing else around it. Not
a test: for A/B runs of the drain's own code (drain_bench.py adds the client's p99 and the
unverified drain, drain_profile.py moves warm LUNs back and forth).

  bench/storage/drain_fresh.py ADMIN NAME=STORED [NAME=STORED ...] [--dir /dev/shm] [--luns 4]
      [--mib 512] [--parallel 2] [--rounds 3] [--warmup 1] [--verify on|off] [--timeline]
      [--perf NAME] [--out /tmp] [--stored-arg=FLAG ...]

Per round, each build (in alternating order): `cp` of the same bytes, two fresh daemons, the
LUNs filled with nbdcopy and right after that the timed drain (cp always first: drain_bench.py's
odd runs; on a VM that takes back unused memory the cp ratio then favours cp, see its one_run,
so compare builds by their CPU seconds); printed: the rate, against cp, each daemon's
CPU seconds, the host's idle share during the drain (/proc/stat) and, with --timeline, that
share per 50 ms. --warmup drains (the first build's, not counted) go first: a host's first drain
after its memory was last used can run far slower. --perf NAME: `perf record -a -g` of NAME's
last drain -> OUT/drain-fresh-perf.data.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../tests/lib"))
from stored import admin, move_luns, start_stored, stop_stored  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("admin")
ap.add_argument("builds", nargs="+", help="NAME=STORED")
ap.add_argument("--dir", default="/dev/shm")
ap.add_argument("--luns", type=int, default=4)
ap.add_argument("--mib", type=int, default=512)
ap.add_argument("--parallel", type=int, default=2)
ap.add_argument("--rounds", type=int, default=3)
ap.add_argument("--warmup", type=int, default=1)
ap.add_argument("--verify", choices=("on", "off"), default="on")
ap.add_argument("--timeline", action="store_true")
ap.add_argument("--perf", default="")
ap.add_argument("--out", default="/tmp")
ap.add_argument("--stored-arg", action="append", default=[])
args = ap.parse_args()
builds = dict(b.split("=", 1) for b in args.builds)
names = [f"l{i}" for i in range(args.luns)]
total = (args.mib << 20) * args.luns


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def host_idle():
    """(idle + iowait ticks, all ticks) of the whole host."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return v[3] + v[4], sum(v)


def drain(work, data, stored, perf=False):
    """One fresh drain with `stored`; returns (rate, rate / cp, CPU source, CPU target,
    idle share, idle shares per 50 ms)."""
    # cp first, then the fill, then the drain right after it (drain_bench.py's odd runs).
    cpdir = os.path.join(work, "cp")
    os.makedirs(cpdir)
    t0 = time.perf_counter()
    subprocess.run(["cp", *data, cpdir], check=True)
    cp = total / (time.perf_counter() - t0)
    shutil.rmtree(cpdir)
    devs = []
    try:
        for d in ("a", "b"):
            os.makedirs(os.path.join(work, d, "ssd"))
            devs.append(start_stored(stored, work, d, [f"ssd={work}/{d}/ssd:16GiB"],
                                     extra=["--verify-moves", args.verify, *args.stored_arg],
                                     log_level="warn"))
        (pa, a), (pb, b) = devs
        for n, src in zip(names, data):
            admin(args.admin, a["grpc"], "lun", "create", n, "--size", f"{args.mib}MiB")
            subprocess.run(["nbdcopy", src, f"nbd://{a['nbd'][0]}/{n}"], check=True)
        prof = None
        if perf:
            prof = subprocess.Popen(["perf", "record", "-a", "-g", "-o",
                                     os.path.join(args.out, "drain-fresh-perf.data")],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        samples, stop = [], threading.Event()

        def sample():
            prev = host_idle()
            while not stop.wait(0.05):
                cur = host_idle()
                samples.append(100 * (cur[0] - prev[0]) / max(1, cur[1] - prev[1]))
                prev = cur

        sampler = threading.Thread(target=sample)
        sampler.start()
        c0 = (cpu_seconds(pa.pid), cpu_seconds(pb.pid))
        i0 = host_idle()
        t0 = time.perf_counter()
        replies = move_luns(args.admin, a, b, names, args.parallel)
        dt = time.perf_counter() - t0
        i1 = host_idle()
        c1 = (cpu_seconds(pa.pid) - c0[0], cpu_seconds(pb.pid) - c0[1])
        stop.set()
        sampler.join()
        if prof:
            prof.send_signal(2)  # SIGINT: perf writes its data
            prof.wait(timeout=120)
        verified = sum(int(m.get("verified_bytes", 0)) for m in replies)
        if args.verify == "on" and verified != total:
            raise RuntimeError(f"verified {verified} of {total} bytes")
        idle = (i1[0] - i0[0]) / max(1, i1[1] - i0[1])
        return total / dt, total / dt / cp, c1[0], c1[1], idle, samples
    finally:
        for p, _ in devs:
            stop_stored(p)
        for d in ("a", "b"):
            shutil.rmtree(os.path.join(work, d), ignore_errors=True)


def main():
    work = tempfile.mkdtemp(prefix="strata-drainfresh-", dir=args.dir)
    rows = {k: [] for k in builds}
    try:
        data = []
        for n in names:
            path = os.path.join(work, f"{n}.img")
            with open(path, "wb") as f:
                subprocess.run(["head", "-c", str(args.mib << 20), "/dev/urandom"], stdout=f,
                               check=True)
            data.append(path)
        for _ in range(args.warmup):
            drain(work, data, next(iter(builds.values())))
        for r in range(args.rounds):
            order = list(builds) if r % 2 == 0 else list(builds)[::-1]
            for name in order:
                row = drain(work, data, builds[name],
                            perf=args.perf == name and r == args.rounds - 1)
                rows[name].append(row)
                rate, vs, src, tgt, idle, samples = row
                print(f"round {r + 1} {name}: drain {rate / 2**20:.0f} MiB/s ({vs:.2f}x cp), CPU "
                      f"source {src:.2f} s, target {tgt:.2f} s "
                      f"({(src + tgt) * 1000 / (total >> 20):.2f} ms/MiB both); host idle "
                      f"{idle * 100:.0f}%; load average {os.getloadavg()[0]:.1f}", flush=True)
                if args.timeline:
                    print("  host idle % per 50 ms: " + " ".join(f"{x:.0f}" for x in samples))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n{args.luns} LUNs x {args.mib} MiB, verify {args.verify}, {args.parallel} moves at "
          f"once, fresh devices; medians of {args.rounds} rounds\n")
    print("| build | drain MiB/s | vs cp | CPU source s | CPU target s | CPU ms/MiB (both) | "
          "host idle |\n|---|---|---|---|---|---|---|")
    for name, v in rows.items():
        def med(i):
            return statistics.median(x[i] for x in v)
        print(f"| {name} | {med(0) / 2**20:.0f} | {med(1):.2f} | {med(2):.2f} | {med(3):.2f} | "
              f"{statistics.median((x[2] + x[3]) * 1000 / (total >> 20) for x in v):.2f} | "
              f"{med(4) * 100:.0f}% |")
    keys = list(builds)
    for other in keys[1:]:
        per = [rows[keys[0]][i][0] / rows[other][i][0] for i in range(args.rounds)]
        print(f"\n{keys[0]} / {other} drain rate per round: "
              + ", ".join(f"{x:.2f}" for x in per) + f" (median {statistics.median(per):.2f})")


main()
