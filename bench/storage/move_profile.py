#!/usr/bin/python3
"""One device move of a LUN of random data between two strata-stored (tiers on --dir),
timed against cp of the same bytes, optionally under a profiler attached to both
daemons for the move only. Not a test: for finding where a move's time goes.

  bench/storage/move_profile.py STORED ADMIN [--dir /dev/shm] [--mib 512]
      [--verify on|off] [--tool none|perf|strace] [--out /tmp]

--tool perf: `perf record -g` of each daemon -> OUT/perf-{a,b}.data (perf report -i ...);
--tool strace: `strace -c -f` of each daemon -> OUT/strace-{a,b}.txt (syscall counts, time).
Prints the move's rate against cp and each daemon's CPU seconds during the move.
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../tests/lib"))
from stored import admin, start_stored, stop_stored  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("stored")
ap.add_argument("admin")
ap.add_argument("--dir", default="/dev/shm")
ap.add_argument("--mib", type=int, default=512)
ap.add_argument("--verify", choices=("on", "off"), default="on")
ap.add_argument("--tool", choices=("none", "perf", "strace"), default="none")
ap.add_argument("--out", default="/tmp")
args = ap.parse_args()


def attach(pid, name):
    if args.tool == "perf":
        cmd = ["perf", "record", "-g", "-o", f"{args.out}/perf-{name}.data", "-p", str(pid)]
    else:
        cmd = ["strace", "-c", "-f", "-o", f"{args.out}/strace-{name}.txt", "-p", str(pid)]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def cpu_seconds(pid):
    """User + system CPU time of a process so far (/proc/PID/stat utime, stime)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def minor_faults(pid):
    """Minor page faults of a process so far (/proc/PID/stat minflt)."""
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[7])


def main():
    work = tempfile.mkdtemp(prefix="strata-moveprof-", dir=args.dir)
    size = args.mib << 20
    devs = []
    try:
        src = f"{work}/src.img"
        with open(src, "wb") as f:
            subprocess.run(["head", "-c", str(size), "/dev/urandom"], stdout=f, check=True)
        t0 = time.perf_counter()
        subprocess.run(["cp", src, f"{work}/cp.img"], check=True)
        cp = size / (time.perf_counter() - t0)
        os.unlink(f"{work}/cp.img")
        for d in ("a", "b"):
            os.makedirs(f"{work}/{d}/ssd")
            devs.append(start_stored(args.stored, work, d, [f"ssd={work}/{d}/ssd:{2 * args.mib}MiB"],
                                     extra=["--verify-moves", args.verify], log_level="warn"))
        (pa, a), (pb, b) = devs
        admin(args.admin, a["grpc"], "lun", "create", "m", "--size", f"{args.mib}MiB")
        subprocess.run(["nbdcopy", src, f"nbd://{a['nbd'][0]}/m"], check=True)
        tools = []
        if args.tool != "none":
            tools = [attach(pa.pid, "a"), attach(pb.pid, "b")]
            time.sleep(1)  # let the profilers attach: a benchmark's settling time, not a sync
        cpu0 = (cpu_seconds(pa.pid), cpu_seconds(pb.pid))
        faults0 = minor_faults(pb.pid)
        t0 = time.perf_counter()
        m = admin(args.admin, a["grpc"], "lun", "migrate", "m", "--to-device", b["grpc"], "--wait",
                  timeout=600)
        dt = time.perf_counter() - t0
        cpu = (cpu_seconds(pa.pid) - cpu0[0], cpu_seconds(pb.pid) - cpu0[1])
        faults = minor_faults(pb.pid) - faults0
        for t in tools:
            t.send_signal(signal.SIGINT)
            t.wait(timeout=120)
        print(json.dumps(m))
        print(f"cp {cp / 2**20:.0f} MiB/s; move {size / dt / 2**20:.0f} MiB/s ({size / dt / cp:.2f}x cp), "
              f"{dt:.2f} s, verify {args.verify}; CPU source {cpu[0]:.2f} s, target {cpu[1]:.2f} s "
              f"({faults} page faults); "
              f"load average {os.getloadavg()[0]:.1f}")
    finally:
        for p, _ in devs:
            stop_stored(p)
        shutil.rmtree(work, ignore_errors=True)


main()
