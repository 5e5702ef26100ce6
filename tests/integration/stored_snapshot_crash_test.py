#!/usr/bin/python3
"""kill -9 strata-stored while it takes a snapshot, many times, under NBD writes.

usage: stored_snapshot_crash_test.py STORED ADMIN [ITERATIONS]

Each round: FUA writes to the first half of the LUN (acknowledged = durable), then
`strata-admin snapshot create` while a writer keeps writing (FUA) to the second half,
and a SIGKILL at a random moment around the call. After every restart:
- every acknowledged write is there (a block shows its last acknowledged value, or a
  value whose write was in flight);
- a snapshot acknowledged by CreateSnapshot exists; any snapshot that exists is whole:
  restored into a LUN (real NBD client, python3-libnbd) it reads exactly the first
  half as it was before the call, and in the second half values the blocks had or
  were being given around the call, never torn;
- every snapshot from earlier rounds still reads as it did (restarts change nothing;
  checked every 10th round and at the end);
- no other snapshot or LUN appeared (no half-made or hidden one).
"""
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time

import nbd

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from stored import start_stored, stop_stored  # noqa: E402

BS = 4096
BLOCKS = 512  # a 2 MiB LUN: 256 "before" blocks, 256 written during the snapshot
HALF = BLOCKS // 2
STORED, ADMIN = sys.argv[1], sys.argv[2]
ITERATIONS = int(sys.argv[3]) if len(sys.argv) > 3 else 50


def admin(server, *args):
    """strata-admin -o json; a daemon that does not answer yet (UNAVAILABLE: a slow
    restart under sanitizers and load) is asked again until a 120 s deadline."""
    deadline = time.monotonic() + 120
    while True:
        out = subprocess.run([ADMIN, "--insecure", "--server", server, "--timeout", "30", "-o", "json", *args],
                             capture_output=True, text=True, timeout=120)
        if out.returncode == 0:
            return out
        if "UNAVAILABLE" not in out.stderr or time.monotonic() > deadline:
            raise RuntimeError(f"strata-admin {' '.join(args)}: {out.stderr.strip()}")


def connect(ready, export):
    host, port = ready["nbd"][0].rsplit(":", 1)
    h = nbd.NBD()
    h.set_export_name(export)
    h.connect_tcp(host, port)
    return h


def values(h):
    image = h.pread(BLOCKS * BS, 0)
    out = []
    for b in range(BLOCKS):
        blk = image[b * BS:(b + 1) * BS]
        out.append(blk[0] if blk == bytes([blk[0]]) * BS else None)
    return out


procs = []  # every daemon started, killed at exit whatever happened


def main():
    work = tempfile.mkdtemp(prefix="strata-snapcrash-")
    rng = random.Random(int(os.environ.get("STRATA_CRASH_SEED", "4242")))
    start = lambda: start_stored(STORED, work, "snapcrash", [f"ssd={work}/ssd:256MiB"],  # noqa: E731
                                 log_level="warn")
    proc, ready = start()
    procs.append(proc)
    admin(ready["grpc"], "lun", "create", "src", "--size", str(BLOCKS * BS))
    last = [0] * BLOCKS              # last acknowledged value per block
    inflight = [set() for _ in range(BLOCKS)]  # sent, not acknowledged
    snaps = {}                       # name -> (expected first half, allowed second half)
    acked_snaps = set()
    seen = set()  # snapshots found whole after a restart at least once
    failures = []
    stats = {"acked": 0, "whole_unacked": 0, "absent": 0, "writes": 0}
    counter = 1
    call_seconds = 0.05  # running estimate of an acknowledged CreateSnapshot call

    for it in range(ITERATIONS + 1):  # the last round only checks
        if it > 0:
            proc, ready = start()
            procs.append(proc)
        server = ready["grpc"]
        # 1. acknowledged writes are all there
        h = connect(ready, "src")
        now = values(h)
        for b in range(BLOCKS):
            if now[b] is None:
                failures.append(f"round {it}: src block {b} is torn")
            elif now[b] != last[b] and now[b] not in inflight[b]:
                failures.append(f"round {it}: src block {b} shows {now[b]}, last acked {last[b]}, "
                                f"in flight {sorted(inflight[b])}")
            else:
                last[b] = now[b]
            inflight[b] = set()
        # 2. snapshots: acknowledged ones exist; each is whole and unchanged
        listed = admin(server, "snapshot", "list").stdout
        names = {s["name"] for s in json.loads(listed).get("snapshots", [])}
        for name in list(snaps):
            if name not in names:
                if name in acked_snaps:
                    failures.append(f"round {it}: acknowledged snapshot {name} is gone")
                else:
                    stats["absent"] += 1
                del snaps[name]
        stray = names - set(snaps)
        if stray:
            failures.append(f"round {it}: unexpected snapshots {sorted(stray)}")
        luns = {lun["name"] for lun in json.loads(admin(server, "lun", "list").stdout)["luns"]}
        if luns != {"src"}:
            failures.append(f"round {it}: unexpected LUNs {sorted(luns - {'src'})}")
        for name, (first, second) in snaps.items():
            # New ones every round; all of them every 10th round and at the end (each
            # check is a restore, a read and a delete: all every round is quadratic).
            if name in seen and it % 10 != 0 and it != ITERATIONS:
                continue
            if name not in seen:
                seen.add(name)
                if name not in acked_snaps:
                    stats["whole_unacked"] += 1  # taken; the answer was lost in the kill
            admin(server, "lun", "create", "check", "--size", str(BLOCKS * BS),
                  "--from-snapshot", name)
            r = connect(ready, "check")
            got = values(r)
            r.shutdown()
            admin(server, "lun", "delete", "check")
            for b in range(BLOCKS):
                want = first[b] if b < HALF else second[b]
                ok = got[b] == want if b < HALF else got[b] in want
                if not ok:
                    failures.append(f"round {it}: snapshot {name} block {b} shows {got[b]}, "
                                    f"want {want if b < HALF else sorted(want)}")
                    break
            # What the second half showed is now fixed: it must never change again.
            snaps[name] = (first, [None] * HALF + [{got[b]} for b in range(HALF, BLOCKS)])
        if failures or it == ITERATIONS:
            h.shutdown()
            stop_stored(proc)
            break

        # 3. writes before the snapshot (acknowledged with FUA: durable)
        for _ in range(rng.randrange(1, 24)):
            b = rng.randrange(HALF)
            v = (counter % 250) + 1
            counter += 1
            inflight[b].add(v)
            h.pwrite(bytes([v]) * BS, b * BS, nbd.CMD_FLAG_FUA)
            last[b] = v
            inflight[b].discard(v)
            stats["writes"] += 1
        first = list(last[:HALF]) + [None] * HALF
        second_before = [None] * HALF + [{last[b]} for b in range(HALF, BLOCKS)]

        # 4. the snapshot, with writes to the second half going on, and a kill
        name = f"snap-{it}"
        stop = threading.Event()
        during = [set() for _ in range(BLOCKS)]

        def writer():
            n = counter * 7
            try:
                while not stop.is_set():
                    b = HALF + (n * 31) % HALF
                    v = (n % 250) + 1
                    n += 1
                    during[b].add(v)
                    inflight[b].add(v)
                    h.pwrite(bytes([v]) * BS, b * BS, nbd.CMD_FLAG_FUA)
                    last[b] = v
                    inflight[b].discard(v)
                    stats["writes"] += 1
            except nbd.Error:
                pass  # the daemon died under us

        w = threading.Thread(target=writer)
        w.start()
        # Aim the kill at the call: around how long acknowledged calls took (the
        # process start, the RPC, the flush), from well before to just after.
        delay = rng.uniform(0.3, 1.1) * call_seconds
        killer = threading.Timer(delay, lambda p=proc: p.send_signal(signal.SIGKILL))
        began = time.monotonic()
        call = subprocess.Popen([ADMIN, "--insecure", "--server", server, "snapshot", "create", name,
                                 "--lun", "src"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        killer.start()
        rc = call.wait(timeout=60)
        if rc != 0:
            # Killed before it answered: aim later next time (slow builds, e.g. ASan).
            call_seconds = min(call_seconds * 1.3, 5.0)
        if rc == 0:
            call_seconds = 0.7 * call_seconds + 0.3 * (time.monotonic() - began)
            acked_snaps.add(name)
            stats["acked"] += 1
        killer.join()
        proc.wait()
        stop.set()
        w.join()
        # the second half's allowed values: before, or anything written during
        snaps[name] = (first, [None] * HALF +
                       [second_before[b] | during[b] for b in range(HALF, BLOCKS)])
        try:
            h.shutdown()
        except nbd.Error:
            pass
        del h
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    for f in failures[:20]:
        print("FAIL:", f)
    print(f"snapshot crash test: {ITERATIONS} kill -9 during CreateSnapshot; "
          f"{stats['acked']} acknowledged, {stats['whole_unacked']} whole but unacknowledged, "
          f"{stats['absent']} absent after the crash, "
          f"{stats['writes']} acknowledged writes")
    passed = 0 if failures else 1
    print(f"{passed} passed, {1 - passed} failed")
    if not failures:
        subprocess.run(["rm", "-rf", work])
    return 1 if failures else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
