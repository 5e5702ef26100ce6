#!/usr/bin/python3
"""How fast is a device move whose bulk data goes over NBD, against one over gRPC and cp?

Per round, interleaved, same bytes (a LUN of random data, tiers and files on --dir):
  cp        cp of the LUN's bytes as a file (the peer the move goals name);
  move-grpc strata-admin lun migrate --to-device between two daemons started with
            --move-data-path grpc (WriteLunData streams: main's path before #11/#16's NBD one);
  move-nbd  the same between two daemons with the default --move-data-path auto (NBD writes
            into the target's per-move export);
  nbdcopy   nbdcopy of the same bytes into a fresh LUN of the NBD pair's target over its NBD
            portal (8 requests of 1 MiB in flight): what an NBD data plane into the same engine
            costs without the move around it.
  move-nbd-base (with --base-stored) the move over NBD between two daemons of another build
            (e.g. main's), in the same rounds: an A/B of the move's own code under the same load.
Moves run with --verify-moves off, so only the transports and the stores are timed. Prints
each round, the medians and the daemons' CPU seconds (source + target, and each). Not a test.

  bench/storage/move_transport_probe.py STORED ADMIN [--dir /dev/shm] [--mib 512] [--rounds 5]
      [--base-stored OTHER_STORED]
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
ap.add_argument("--base-stored", default="",
                help="another strata-stored build whose move over NBD runs in the same rounds")
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
        for d, path in (("a", "auto"), ("b", "auto"), ("c", "grpc"), ("d", "grpc")):
            os.makedirs(f"{work}/{d}/ssd")
            devs.append(start_stored(args.stored, work, d, [f"ssd={work}/{d}/ssd:{3 * args.mib}MiB"],
                                     extra=["--verify-moves", "off", "--move-data-path", path],
                                     log_level="warn"))
        pairs = {"move-nbd": [devs[0], devs[1]], "move-grpc": [devs[2], devs[3]]}
        if args.base_stored:
            for d in ("e", "f"):
                os.makedirs(f"{work}/{d}/ssd")
                devs.append(start_stored(args.base_stored, work, d,
                                         [f"ssd={work}/{d}/ssd:{3 * args.mib}MiB"],
                                         extra=["--verify-moves", "off", "--move-data-path", "auto"],
                                         log_level="warn"))
            pairs["move-nbd-base"] = [devs[4], devs[5]]
        for pair in pairs.values():
            admin(args.admin, pair[0][1]["grpc"], "lun", "create", "m", "--size", f"{args.mib}MiB")
            subprocess.run(["nbdcopy", src, f"nbd://{pair[0][1]['nbd'][0]}/m"], check=True)
        moves = ["move-grpc", "move-nbd"] + (["move-nbd-base"] if args.base_stored else [])
        rates = {k: [] for k in ["cp"] + moves + ["nbdcopy"]}
        cpu = {k: [] for k in moves + ["nbdcopy"]}
        split = {k: [] for k in moves}  # (source, target) CPU seconds
        for r in range(args.rounds):
            t0 = time.perf_counter()
            subprocess.run(["cp", src, f"{work}/cp.img"], check=True)
            rates["cp"].append(size / (time.perf_counter() - t0))
            os.unlink(f"{work}/cp.img")

            # The A/B pair in alternating order, so neither always runs second.
            order = moves if r % 2 == 0 else moves[:1] + moves[1:][::-1]
            for kind in order:
                (ps, s), (pt, t) = pairs[kind]
                s0, g0 = cpu_seconds(ps.pid), cpu_seconds(pt.pid)
                t0 = time.perf_counter()
                m = admin(args.admin, s["grpc"], "lun", "migrate", "m", "--to-device", t["grpc"],
                          "--wait", timeout=600)
                rates[kind].append(size / (time.perf_counter() - t0))
                split[kind].append((cpu_seconds(ps.pid) - s0, cpu_seconds(pt.pid) - g0))
                cpu[kind].append(sum(split[kind][-1]))
                if m.get("state") != "MIGRATION_STATE_DONE":
                    raise RuntimeError(f"{kind}: move failed: {m}")
                pairs[kind].reverse()  # the next round moves m back

            # Into the NBD pair's device that just received m, as the move's target was.
            pt, t = pairs["move-nbd"][0]
            admin(args.admin, t["grpc"], "lun", "create", "n", "--size", f"{args.mib}MiB")
            c0 = cpu_seconds(pt.pid)
            t0 = time.perf_counter()
            subprocess.run(["nbdcopy", "--requests=8", "--request-size=1048576", src,
                            f"nbd://{t['nbd'][0]}/n"], check=True)
            rates["nbdcopy"].append(size / (time.perf_counter() - t0))
            cpu["nbdcopy"].append(cpu_seconds(pt.pid) - c0)
            admin(args.admin, t["grpc"], "lun", "delete", "n")
            cp = rates["cp"][-1]
            print(f"round {r + 1}: cp {cp / 2**20:.0f} MiB/s; " + "; ".join(
                f"{k} {rates[k][-1] / 2**20:.0f} ({rates[k][-1] / cp:.2f}x cp, CPU {cpu[k][-1]:.2f} s)"
                for k in cpu) + f"; load average {os.getloadavg()[0]:.1f}", flush=True)
        med = {k: statistics.median(v) for k, v in rates.items()}
        print("| transport | MiB/s (median) | vs cp | CPU s per LUN (median) |")
        print("|---|---|---|---|")
        print(f"| cp | {med['cp'] / 2**20:.0f} | 1.00 | |")
        print(f"| device move over gRPC (--move-data-path grpc, unverified) | "
              f"{med['move-grpc'] / 2**20:.0f} | {med['move-grpc'] / med['cp']:.2f} | "
              f"{statistics.median(cpu['move-grpc']):.2f} (both daemons) |")
        print(f"| device move over NBD (--move-data-path auto, unverified) | "
              f"{med['move-nbd'] / 2**20:.0f} | {med['move-nbd'] / med['cp']:.2f} | "
              f"{statistics.median(cpu['move-nbd']):.2f} (both daemons) |")
        if args.base_stored:
            print(f"| device move over NBD, --base-stored's build | "
                  f"{med['move-nbd-base'] / 2**20:.0f} | {med['move-nbd-base'] / med['cp']:.2f} | "
                  f"{statistics.median(cpu['move-nbd-base']):.2f} (both daemons) |")
        print(f"| nbdcopy into the target's NBD portal | {med['nbdcopy'] / 2**20:.0f} | "
              f"{med['nbdcopy'] / med['cp']:.2f} | {statistics.median(cpu['nbdcopy']):.2f} "
              f"(target only) |")
        for k in moves:
            src = statistics.median(c[0] for c in split[k])
            tgt = statistics.median(c[1] for c in split[k])
            print(f"{k}: CPU source {src:.2f} s, target {tgt:.2f} s (medians)")
        print(f"goal (#16: a move >= 0.8x cp): move over NBD {med['move-nbd'] / med['cp']:.2f}x cp, "
              f"over gRPC {med['move-grpc'] / med['cp']:.2f}x cp")
        if args.base_stored:
            print(f"move over NBD vs --base-stored's: {med['move-nbd'] / med['move-nbd-base']:.2f}x "
                  f"the rate, {statistics.median(cpu['move-nbd']) / statistics.median(cpu['move-nbd-base']):.2f}x "
                  f"the CPU (medians of the same rounds)")
    finally:
        for p, _ in devs:
            stop_stored(p)
        shutil.rmtree(work, ignore_errors=True)


main()
