#!/usr/bin/python3
"""Device drain: every LUN of device A moved live to device B (at most --parallel
moves at once), against cp of the same bytes in the same run; and a client's p99
latency on A while LUNs drain, against the same client idle. Not a test: prints
markdown (one table per run, then the medians).

  bench/storage/drain_bench.py STORED ADMIN [--dir /dev/shm] [--luns 4] [--mib 512]
      [--parallel 2] [--runs 4] [--fio-seconds 20] [--fio-iops 2000] [--stored-arg=FLAG ...]
      [--compare-caps auto,128MiB,0] [--base-stored OTHER_STORED] [--page-reporting off]

Both devices keep their tiers in --dir (tmpfs by default), as do cp's source and
target. Each run drains with move verification on, then again with it off
(strata-stored --verify-moves), on fresh devices.

With --compare-caps, each run instead measures the client's p99 and the moves during
the busy window once per strata-stored --copy-rate-with-clients value (interleaved,
fresh devices each), and a table compares them: the copy cap that follows the
clients' latency (auto) against the fixed cap and none.

With --page-reporting off (root; a VM guest whose balloon reports free pages to its
host), the guest's free page reporting is switched off for the benchmark
(/sys/module/page_reporting/parameters/page_reporting_order set past the largest
order, restored at the end) and --warm-mib of tmpfs is written and removed once before
the first run: every page cp and the drain then allocate is one the host already
backs, so neither pays a host fault per page for allocating first (docs/benchmarks.md,
"The drain's figures and the VM's memory"). It measures the code, not the hypervisor.
The default, 6x the LUNs' bytes, covers a run's peak (the LUN images, the source's LUNs,
cp's copy and the target's: 4x) with room for the daemons and the client; at 4x the
first drain of a benchmark still met pages the host had to back (0.50-0.55x cp where
the later ones read 0.65-0.71x).

With --base-stored, each run drains (verified, with the client, then unverified) once
with STORED and once with OTHER_STORED (e.g. main's build), in alternating order, and a
table compares the two builds run by run.
"""
import argparse
import contextlib
import json
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

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../lib"))
import guest_memory  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("stored")
ap.add_argument("admin")
ap.add_argument("--dir", default="/dev/shm")
ap.add_argument("--luns", type=int, default=4)
ap.add_argument("--mib", type=int, default=512)
ap.add_argument("--parallel", type=int, default=2)
ap.add_argument("--runs", type=int, default=4,
                help="even, so cp and the drain allocate first equally often (one_run)")
ap.add_argument("--fio-seconds", type=int, default=20)
ap.add_argument("--fio-iops", type=int, default=2000, help="client rate limit (read+write)")
ap.add_argument("--stored-arg", action="append", default=[],
                help="extra strata-stored flag for both devices (repeatable), e.g. "
                     "--stored-arg=--copy-priority=idle")
ap.add_argument("--compare-caps", default="",
                help="comma-separated --copy-rate-with-clients values to compare, e.g. "
                     "auto,128MiB,0 (the first is measured against the others)")
ap.add_argument("--base-stored", default="",
                help="another strata-stored build drained in the same runs (an A/B)")
ap.add_argument("--page-reporting", choices=("keep", "off"), default="keep",
                help="off: the guest's free page reporting off during the benchmark (root)")
ap.add_argument("--warm-mib", type=int, default=0,
                help="with --page-reporting off: tmpfs written and removed before the first run "
                     "(default: 6x the LUNs' bytes)")
args = ap.parse_args()
MOVE_TIMEOUT = 600  # seconds for one `lun migrate --wait`


def names():
    return [f"l{i}" for i in range(args.luns)]


def move_all(frm, to, luns):
    """Moves `luns` from device frm to device to, --parallel at a time; returns the
    replies (each checked DONE)."""
    return move_luns(args.admin, frm, to, luns, args.parallel, timeout=MOVE_TIMEOUT)


def fio(portal, seconds, out):
    host, port = portal.rsplit(":", 1)
    cmd = ["fio", "--name=client", "--ioengine=nbd", f"--uri=nbd://{host}:{port}/c",
           "--rw=randrw", "--bs=4k", "--iodepth=4", f"--rate_iops={args.fio_iops // 2}",
           "--size=256M", "--time_based", f"--runtime={seconds}", "--output-format=json",
           f"--output={out}"]
    subprocess.run(cmd, check=True, capture_output=True, timeout=seconds + 120)
    with open(out) as f:
        job = json.load(f)["jobs"][0]
    p99 = {k: job[k]["clat_ns"]["percentile"]["99.000000"] / 1000 for k in ("read", "write")}
    p99["iops"] = job["read"]["iops"] + job["write"]["iops"]
    return p99


def cp_peer(work, data, total):
    """cp of the same bytes, on the same file system, in the same run; the copy stays
    (its pages held) until the caller removes work/cp."""
    cpdir = os.path.join(work, "cp")
    os.makedirs(cpdir)
    t0 = time.perf_counter()
    subprocess.run(["cp", *data, cpdir], check=True)
    return total / (time.perf_counter() - t0)


def one_run(work, data, verify, with_client, extra=(), stored=None, cp_first=True):
    """One drain of fresh devices against cp of the same bytes. Both write that many
    bytes into new tmpfs pages, and on a VM whose host takes back the guest's unused
    memory, pages not freed a moment ago cost a host fault each (docs/benchmarks.md,
    "The drain's figures and the VM's memory"): whichever of the two allocates first
    gets the pages the last run freed. So after the fill they take turns (cp_first), and
    cp's copy is kept until both are done."""
    res = {"cp_first": cp_first}
    size = args.mib << 20
    total = size * args.luns
    cpdir = os.path.join(work, "cp")

    flag = ["--verify-moves", "on" if verify else "off", *args.stored_arg, *extra]
    devs = []
    try:
        for d in ("a", "b"):
            os.makedirs(os.path.join(work, d, "ssd"))
            devs.append(start_stored(stored or args.stored, work, d, [f"ssd={work}/{d}/ssd:16GiB"],
                                     extra=flag, log_level="warn"))
        (_, a), (_, b) = devs
        for n, src in zip(names(), data):
            admin(args.admin, a["grpc"], "lun", "create", n, "--size", f"{args.mib}MiB")
            subprocess.run(["nbdcopy", src, f"nbd://{a['nbd'][0]}/{n}"], check=True)
        if with_client:
            admin(args.admin, a["grpc"], "lun", "create", "c", "--size", "256MiB")
            subprocess.run(["nbdcopy", "--", "[", "nbdkit", "-s", "random", "256M", "]",
                            f"nbd://{a['nbd'][0]}/c"], check=False, capture_output=True)

        if cp_first:
            res["cp"] = cp_peer(work, data, total)
        t0 = time.perf_counter()
        replies = move_all(a, b, names())
        res["drain_s"] = time.perf_counter() - t0
        res["drain"] = total / res["drain_s"]
        if not cp_first:
            res["cp"] = cp_peer(work, data, total)
        shutil.rmtree(cpdir)
        verified = sum(int(m.get("verified_bytes", 0)) for m in replies)
        # Per LUN, the pause verification added to its switch (the re-check of ranges
        # written after the first comparison); and those pauses as a share of the drain.
        res["verify_s"] = statistics.median(float(m.get("verify_seconds", 0)) for m in replies)
        res["verify_share"] = sum(float(m.get("verify_seconds", 0)) for m in replies) / (
            args.parallel * res["drain_s"])
        res["verified"] = verified
        if verify and verified != total:
            raise RuntimeError(f"verified {verified} of {total} bytes")

        if with_client:
            res["idle"] = fio(a["nbd"][0], args.fio_seconds, os.path.join(work, "idle.json"))
            # While the client runs, the LUNs go back and forth A <-> B (drain, restore,
            # drain...) so moves cover the whole window; A is one side of every move.
            stop, moved, where = threading.Event(), [0], [b, a]

            def churn():
                while not stop.is_set():
                    move_all(where[0], where[1], names())
                    moved[0] += total
                    where.reverse()

            t = threading.Thread(target=churn)
            t0 = time.perf_counter()
            t.start()
            res["busy"] = fio(a["nbd"][0], args.fio_seconds, os.path.join(work, "busy.json"))
            stop.set()
            t.join()
            res["churn"] = moved[0] / (time.perf_counter() - t0)
    finally:
        for p, _ in devs:
            stop_stored(p)
        for d in ("a", "b", "cp"):
            shutil.rmtree(os.path.join(work, d), ignore_errors=True)
    return res


def who_first(res):
    return "cp first" if res["cp_first"] else "drain first"


def by_order(rows):
    """Median drain / cp of the drains (verified and not) with cp first, and with the
    drain first: far apart when the host's memory, not the code, sets the figure."""
    out = []
    for first, label in ((True, "cp first"), (False, "drain first")):
        r = [x["drain"] / x["cp"] for pair in rows for x in pair if x["cp_first"] == first]
        out.append(f"{label} {statistics.median(r):.2f}x ({len(r)})" if r else f"{label} -")
    return ", ".join(out)


def mib(x):
    return f"{x / 2**20:.0f}"


def main():
    work = tempfile.mkdtemp(prefix="strata-drainbench-", dir=args.dir)
    memory = contextlib.ExitStack()
    try:
        if args.page_reporting == "off":
            memory.enter_context(guest_memory.reporting_off())
            guest_memory.warm(work, args.warm_mib or 6 * args.luns * args.mib)
        data = []
        for n in names():
            path = os.path.join(work, f"{n}.img")
            with open(path, "wb") as f:
                subprocess.run(["head", "-c", str(args.mib << 20), "/dev/urandom"], stdout=f,
                               check=True)
            data.append(path)
        if args.compare_caps:
            compare(work, data, [c.strip() for c in args.compare_caps.split(",") if c.strip()])
            return
        if args.base_stored:
            compare_builds(work, data)
            return
        runs = []
        for i in range(args.runs):
            on = one_run(work, data, True, True, cp_first=i % 2 == 0)
            off = one_run(work, data, False, False, cp_first=i % 2 == 1)
            runs.append((on, off))
            print(f"run {i + 1} (verified: {who_first(on)}, unverified: {who_first(off)}): cp {mib(on['cp'])} MiB/s, drain {mib(on['drain'])} MiB/s "
                  f"verified ({on['drain'] / on['cp']:.2f}x cp); unverified: cp "
                  f"{mib(off['cp'])}, drain {mib(off['drain'])} MiB/s "
                  f"({off['drain'] / off['cp']:.2f}x); paused re-check {on['verify_s'] * 1000:.1f} ms per LUN; client p99 r/w idle "
                  f"{on['idle']['read']:.0f}/{on['idle']['write']:.0f} us, during moves "
                  f"{on['busy']['read']:.0f}/{on['busy']['write']:.0f} us "
                  f"(moves at {mib(on['churn'])} MiB/s)", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        memory.close()

    def med(f):
        return statistics.median(f(on, off) for on, off in runs)

    print(f"\n{args.luns} LUNs x {args.mib} MiB of random data, tiers and cp in {args.dir}, "
          f"at most {args.parallel} moves at once; medians of {args.runs} runs\n")
    print("| what | MiB/s | vs cp (same run) |\n|---|---|---|")
    print(f"| cp of the LUNs' bytes (verified runs) | {mib(med(lambda on, off: on['cp']))} | 1.00 |")
    print(f"| drain A -> B, moves verified | {mib(med(lambda on, off: on['drain']))} | "
          f"{med(lambda on, off: on['drain'] / on['cp']):.2f} |")
    print(f"| cp of the LUNs' bytes (unverified runs) | {mib(med(lambda on, off: off['cp']))} | 1.00 |")
    print(f"| drain A -> B, --verify-moves off | {mib(med(lambda on, off: off['drain']))} | "
          f"{med(lambda on, off: off['drain'] / off['cp']):.2f} |")
    print(f"\nverification's cost: unverified / verified drain rate "
          f"{med(lambda on, off: off['drain'] / on['drain']):.2f} (separate drains, same run; "
          "both devices hash every range once more with I/O running); the paused re-check "
          f"{med(lambda on, off: on['verify_s']) * 1000:.1f} ms per {args.mib} MiB LUN "
          f"({med(lambda on, off: on['verify_share']) * 100:.1f}% of the drain)\n")
    print(f"| client: fio nbd 4 KiB randrw QD4, {args.fio_iops} IOPS cap, {args.fio_seconds} s "
          "| IOPS | read p99 us | write p99 us | p99 vs idle (r / w) |\n|---|---|---|---|---|")
    for ph, label in (("idle", "idle"), ("busy", "while LUNs move A <-> B (verified)")):
        r = med(lambda on, off: on[ph]["read"])
        w = med(lambda on, off: on[ph]["write"])
        iops = med(lambda on, off: on[ph]["iops"])
        rr = med(lambda on, off: on[ph]["read"] / on["idle"]["read"])
        wr = med(lambda on, off: on[ph]["write"] / on["idle"]["write"])
        print(f"| {label} | {iops:.0f} | {r:.0f} | {w:.0f} | {rr:.1f}x / {wr:.1f}x |")
    print(f"\nmoves during the busy window: {mib(med(lambda on, off: on['churn']))} MiB/s")
    print(f"drain / cp by who allocated first (all drains): {by_order(runs)}")


def compare_builds(work, data):
    builds = {"new": args.stored, "base": args.base_stored}
    rows = {b: [] for b in builds}
    for i in range(args.runs):
        order = ["new", "base"] if i % 2 == 0 else ["base", "new"]
        for b in order:
            on = one_run(work, data, True, True, stored=builds[b], cp_first=i % 2 == 0)
            off = one_run(work, data, False, False, stored=builds[b], cp_first=i % 2 == 1)
            rows[b].append((on, off))
            print(f"run {i + 1} {b} (verified: {who_first(on)}, unverified: {who_first(off)}): drain verified {mib(on['drain'])} MiB/s "
                  f"({on['drain'] / on['cp']:.2f}x cp {mib(on['cp'])}), unverified "
                  f"{mib(off['drain'])} MiB/s ({off['drain'] / off['cp']:.2f}x cp {mib(off['cp'])}); "
                  f"client p99 r/w idle {on['idle']['read']:.0f}/{on['idle']['write']:.0f} us, "
                  f"during moves {on['busy']['read']:.0f}/{on['busy']['write']:.0f} us "
                  f"({max(on['busy']['read'] / on['idle']['read'], on['busy']['write'] / on['idle']['write']):.1f}x), "
                  f"moves at {mib(on['churn'])} MiB/s; load average {os.getloadavg()[0]:.1f}",
                  flush=True)

    def med(b, f):
        return statistics.median(f(on, off) for on, off in rows[b])

    print(f"\n{args.luns} LUNs x {args.mib} MiB in {args.dir}, at most {args.parallel} moves at "
          f"once; new = {args.stored}, base = {args.base_stored}; medians of {args.runs} runs, "
          "builds interleaved\n")
    print("| build | drain verified MiB/s | vs cp | drain unverified MiB/s | vs cp | "
          "client p99 during moves vs idle (worse of r / w) | moves with the client MiB/s |")
    print("|---|---|---|---|---|---|---|")
    for b in builds:
        print(f"| {b} | {mib(med(b, lambda on, off: on['drain']))} | "
              f"{med(b, lambda on, off: on['drain'] / on['cp']):.2f} | "
              f"{mib(med(b, lambda on, off: off['drain']))} | "
              f"{med(b, lambda on, off: off['drain'] / off['cp']):.2f} | "
              f"{med(b, lambda on, off: max(on['busy']['read'] / on['idle']['read'], on['busy']['write'] / on['idle']['write'])):.1f}x | "
              f"{mib(med(b, lambda on, off: on['churn']))} |")
    ratio = statistics.median(rows["new"][k][0]["drain"] / rows["base"][k][0]["drain"]
                              for k in range(args.runs))
    ratio_off = statistics.median(rows["new"][k][1]["drain"] / rows["base"][k][1]["drain"]
                                  for k in range(args.runs))
    print(f"\nnew / base drain rate, run by run (median): verified {ratio:.2f}x, unverified "
          f"{ratio_off:.2f}x; goal (#11): drain >= 0.7x cp: new verified "
          f"{med('new', lambda on, off: on['drain'] / on['cp']):.2f}x")
    for b in builds:
        print(f"{b}: drain / cp by who allocated first (all drains): {by_order(rows[b])}")


def compare(work, data, caps):
    rows = {c: [] for c in caps}
    for i in range(args.runs):
        for c in caps:
            on = one_run(work, data, True, True, [f"--copy-rate-with-clients={c}"])
            rows[c].append(on)
            print(f"run {i + 1} --copy-rate-with-clients={c}: client p99 r/w idle "
                  f"{on['idle']['read']:.0f}/{on['idle']['write']:.0f} us, during moves "
                  f"{on['busy']['read']:.0f}/{on['busy']['write']:.0f} us "
                  f"({on['busy']['read'] / on['idle']['read']:.1f}x / "
                  f"{on['busy']['write'] / on['idle']['write']:.1f}x), moves at "
                  f"{mib(on['churn'])} MiB/s", flush=True)

    def med(c, f):
        return statistics.median(f(on) for on in rows[c])

    peers = caps[1:]
    print(f"\n{args.luns} LUNs x {args.mib} MiB in {args.dir}, LUNs moving A <-> B (at most "
          f"{args.parallel} at once) while fio (4 KiB randrw QD4, {args.fio_iops} IOPS, "
          f"{args.fio_seconds} s) runs on A; medians of {args.runs} interleaved runs\n")
    print("| --copy-rate-with-clients | client p99 r / w idle (us) | during moves (us) | vs idle (r / w) "
          "| moves MiB/s |" + "".join(f" moves vs {p} |" for p in peers))
    print("|" + "---|" * (5 + len(peers)))
    for c in caps:
        line = (f"| {c} | {med(c, lambda o: o['idle']['read']):.0f} / {med(c, lambda o: o['idle']['write']):.0f} "
                f"| {med(c, lambda o: o['busy']['read']):.0f} / {med(c, lambda o: o['busy']['write']):.0f} "
                f"| {med(c, lambda o: o['busy']['read'] / o['idle']['read']):.1f}x / "
                f"{med(c, lambda o: o['busy']['write'] / o['idle']['write']):.1f}x "
                f"| {mib(med(c, lambda o: o['churn']))} |")
        for p in peers:
            line += f" {statistics.median(rows[c][k]['churn'] / rows[p][k]['churn'] for k in range(args.runs)):.2f} |"
        print(line)
    first = caps[0]
    worst = med(first, lambda o: max(o['busy']['read'] / o['idle']['read'],
                                     o['busy']['write'] / o['idle']['write']))
    print(f"\ngoal for {first}: client p99 during moves <= 3x idle: {worst:.1f}x (worse of r / w); "
          "moves vs " + ", ".join(
              f"{p}: {statistics.median(rows[first][k]['churn'] / rows[p][k]['churn'] for k in range(args.runs)):.2f}x"
              for p in peers))


main()
