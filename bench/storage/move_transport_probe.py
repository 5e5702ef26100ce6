#!/usr/bin/python3
"""How fast could a device move be if its bulk data went over NBD instead of gRPC?

Per round, interleaved, same bytes (a LUN of random data, tiers and files on --dir):
  cp      cp of the LUN's bytes as a file (the peer the move goals name);
  move    strata-admin lun migrate --to-device: the device move as it is (gRPC WriteLunData
          streams; --verify-moves off, so only the transport and the stores are timed);
  nbd     nbdcopy of the same bytes into a fresh LUN of the target device over its NBD portal
          (8 requests of 1 MiB in flight): what an NBD data plane into the same engine costs.
Prints each round, the medians and each daemon's CPU seconds. Not a test.

  bench/storage/move_transport_probe.py STORED ADMIN [--dir /dev/shm] [--mib 512] [--rounds 5]
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
from stored import admin, start_stored, stop_stored  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("stored")
ap.add_argument("admin")
ap.add_argument("--dir", default="/dev/shm")
ap.add_argument("--mib", type=int, default=512)
ap.add_argument("--rounds", type=int, default=5)
args = ap.parse_args()


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    work = tempfile.mkdtemp(prefix="strata-transport-", dir=args.dir)
    size = args.mib << 20
    devs = []
    try:
        src = f"{work}/src.img"
        with open(src, "wb") as f:
            subprocess.run(["head", "-c", str(size), "/dev/urandom"], stdout=f, check=True)
        for d in ("a", "b"):
            os.makedirs(f"{work}/{d}/ssd")
            devs.append(start_stored(args.stored, work, d, [f"ssd={work}/{d}/ssd:{3 * args.mib}MiB"],
                                     extra=["--verify-moves", "off"], log_level="warn"))
        admin(args.admin, devs[0][1]["grpc"], "lun", "create", "m", "--size", f"{args.mib}MiB")
        subprocess.run(["nbdcopy", src, f"nbd://{devs[0][1]['nbd'][0]}/m"], check=True)
        rates = {"cp": [], "move": [], "nbd": []}
        cpu = {"move": [], "nbd": []}
        here, there = 0, 1  # the device holding LUN m, and the other
        for r in range(args.rounds):
            t0 = time.perf_counter()
            subprocess.run(["cp", src, f"{work}/cp.img"], check=True)
            rates["cp"].append(size / (time.perf_counter() - t0))
            os.unlink(f"{work}/cp.img")

            (ps, s), (pt, t) = devs[here], devs[there]
            c0 = cpu_seconds(ps.pid) + cpu_seconds(pt.pid)
            t0 = time.perf_counter()
            admin(args.admin, s["grpc"], "lun", "migrate", "m", "--to-device", t["grpc"], "--wait",
                  timeout=600)
            rates["move"].append(size / (time.perf_counter() - t0))
            cpu["move"].append(cpu_seconds(ps.pid) + cpu_seconds(pt.pid) - c0)

            # Into the device that just received m, as the move's target was.
            admin(args.admin, t["grpc"], "lun", "create", "n", "--size", f"{args.mib}MiB")
            c0 = cpu_seconds(pt.pid)
            t0 = time.perf_counter()
            subprocess.run(["nbdcopy", "--requests=8", "--request-size=1048576", src,
                            f"nbd://{t['nbd'][0]}/n"], check=True)
            rates["nbd"].append(size / (time.perf_counter() - t0))
            cpu["nbd"].append(cpu_seconds(pt.pid) - c0)
            admin(args.admin, t["grpc"], "lun", "delete", "n")
            here, there = there, here
            print(f"round {r + 1}: cp {rates['cp'][-1] / 2**20:.0f} MiB/s, move "
                  f"{rates['move'][-1] / 2**20:.0f} ({rates['move'][-1] / rates['cp'][-1]:.2f}x cp, "
                  f"daemons' CPU {cpu['move'][-1]:.2f} s), nbd {rates['nbd'][-1] / 2**20:.0f} "
                  f"({rates['nbd'][-1] / rates['cp'][-1]:.2f}x cp, target CPU {cpu['nbd'][-1]:.2f} s); "
                  f"load average {os.getloadavg()[0]:.1f}", flush=True)
        med = {k: statistics.median(v) for k, v in rates.items()}
        print("| transport | MiB/s (median) | vs cp | CPU s per LUN (median) |")
        print("|---|---|---|---|")
        print(f"| cp | {med['cp'] / 2**20:.0f} | 1.00 | |")
        print(f"| device move (gRPC, unverified) | {med['move'] / 2**20:.0f} | "
              f"{med['move'] / med['cp']:.2f} | {statistics.median(cpu['move']):.2f} (both daemons) |")
        print(f"| nbdcopy into the target's NBD portal | {med['nbd'] / 2**20:.0f} | "
              f"{med['nbd'] / med['cp']:.2f} | {statistics.median(cpu['nbd']):.2f} (target only) |")
    finally:
        for p, _ in devs:
            stop_stored(p)
        shutil.rmtree(work, ignore_errors=True)


main()
