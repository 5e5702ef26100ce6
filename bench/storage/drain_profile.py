#!/usr/bin/python3
"""Where a drain's time goes: the same LUNs drained A -> B (and back) at --parallel 1, 2, ...
moves at once, each timed and each daemon's CPU seconds counted, optionally under a profiler
attached to both daemons for one of the drains. Not a test: for finding why several moves
at once move fewer bytes per second than one.

  bench/storage/drain_profile.py STORED ADMIN [--dir /dev/shm] [--luns 4] [--mib 512]
      [--parallel 1,2] [--rounds 2] [--verify on|off] [--tool none|perf|strace]
      [--profile-parallel 2] [--out /tmp] [--stored-arg=FLAG ...]

Per round, each --parallel value drains every LUN from the device holding them to the
other (fresh moves: the LUNs go back and forth), and prints the drain's rate, the CPU
seconds of each daemon during it, and the CPU per MiB. `cp` of the same bytes runs first
in each round as the peer. --tool perf: `perf record -a -g` (whole system) during the
last round's --profile-parallel drain -> OUT/drain-perf.data; --tool strace: `strace -c -f`
of each daemon then -> OUT/drain-strace-{a,b}.txt.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../tests/lib"))
from stored import admin, move_luns, start_stored, stop_stored  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("stored")
ap.add_argument("admin")
ap.add_argument("--dir", default="/dev/shm")
ap.add_argument("--luns", type=int, default=4)
ap.add_argument("--mib", type=int, default=512)
ap.add_argument("--parallel", default="1,2")
ap.add_argument("--rounds", type=int, default=2)
ap.add_argument("--verify", choices=("on", "off"), default="on")
ap.add_argument("--tool", choices=("none", "perf", "strace"), default="none")
ap.add_argument("--profile-parallel", type=int, default=2)
ap.add_argument("--out", default="/tmp")
ap.add_argument("--stored-arg", action="append", default=[])
args = ap.parse_args()


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def drain(frm, to, names, parallel):
    move_luns(args.admin, frm, to, names, parallel)


def attach(devs):
    if args.tool == "perf":
        return [subprocess.Popen(["perf", "record", "-a", "-g", "-o",
                                  f"{args.out}/drain-perf.data"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    return [subprocess.Popen(["strace", "-c", "-f", "-o", f"{args.out}/drain-strace-{n}.txt",
                              "-p", str(p.pid)], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL) for n, (p, _) in zip("ab", devs)]


def main():
    work = tempfile.mkdtemp(prefix="strata-drainprof-", dir=args.dir)
    size = args.mib << 20
    total = size * args.luns
    names = [f"l{i}" for i in range(args.luns)]
    pars = [int(p) for p in args.parallel.split(",")]
    devs = []
    try:
        data = []
        for n in names:
            path = os.path.join(work, f"{n}.img")
            with open(path, "wb") as f:
                subprocess.run(["head", "-c", str(size), "/dev/urandom"], stdout=f, check=True)
            data.append(path)
        for d in ("a", "b"):
            os.makedirs(os.path.join(work, d, "ssd"))
            devs.append(start_stored(args.stored, work, d, [f"ssd={work}/{d}/ssd:16GiB"],
                                     extra=["--verify-moves", args.verify, *args.stored_arg],
                                     log_level="warn"))
        for n, src in zip(names, data):
            admin(args.admin, devs[0][1]["grpc"], "lun", "create", n, "--size", f"{args.mib}MiB")
            subprocess.run(["nbdcopy", src, f"nbd://{devs[0][1]['nbd'][0]}/{n}"], check=True)
        rows = {p: [] for p in pars}
        holder = 0
        for r in range(args.rounds):
            os.makedirs(os.path.join(work, "cp"))
            t0 = time.perf_counter()
            subprocess.run(["cp", *data, os.path.join(work, "cp")], check=True)
            cp = total / (time.perf_counter() - t0)
            shutil.rmtree(os.path.join(work, "cp"))
            for p in pars:
                src, dst = devs[holder], devs[1 - holder]
                prof = (attach([src, dst] if holder == 0 else [dst, src])
                        if args.tool != "none" and r == args.rounds - 1 and p == args.profile_parallel
                        else [])
                c0 = (cpu_seconds(src[0].pid), cpu_seconds(dst[0].pid))
                t0 = time.perf_counter()
                drain(src[1], dst[1], names, p)
                dt = time.perf_counter() - t0
                c1 = (cpu_seconds(src[0].pid) - c0[0], cpu_seconds(dst[0].pid) - c0[1])
                for q in prof:
                    q.send_signal(2)  # SIGINT: perf and strace write their reports
                    q.wait(timeout=120)
                holder = 1 - holder
                rows[p].append((total / dt / cp, total / dt, c1))
                print(f"round {r + 1} parallel {p}: drain {total / dt / 2**20:.0f} MiB/s "
                      f"({total / dt / cp:.2f}x cp {cp / 2**20:.0f}), {dt:.2f} s; CPU source "
                      f"{c1[0]:.2f} s, target {c1[1]:.2f} s ({(c1[0] + c1[1]) * 1000 / (total >> 20):.2f} "
                      f"ms/MiB both); load average {os.getloadavg()[0]:.1f}", flush=True)
        print(f"\n{args.luns} LUNs x {args.mib} MiB, verify {args.verify}; medians of "
              f"{args.rounds} rounds\n")
        print("| moves at once | drain MiB/s | vs cp | CPU source s | CPU target s | CPU ms/MiB (both) |")
        print("|---|---|---|---|---|---|")
        for p in pars:
            v = rows[p]
            print(f"| {p} | {statistics.median(x[1] for x in v) / 2**20:.0f} | "
                  f"{statistics.median(x[0] for x in v):.2f} | "
                  f"{statistics.median(x[2][0] for x in v):.2f} | "
                  f"{statistics.median(x[2][1] for x in v):.2f} | "
                  f"{statistics.median((x[2][0] + x[2][1]) * 1000 / (total >> 20) for x in v):.2f} |")
    finally:
        for p, _ in devs:
            stop_stored(p)
        shutil.rmtree(work, ignore_errors=True)


main()
