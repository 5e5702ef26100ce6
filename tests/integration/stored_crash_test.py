#!/usr/bin/python3
"""Kill -9 strata-stored at random moments under write load, many times, and
check after every restart that each write acknowledged as durable (sent with FUA,
or completed before an acknowledged FLUSH) is there, and that no block is torn or
holds data that was never written to it.

usage: stored_crash_test.py STORED ADMIN [ITERATIONS] [dedup|plain]

The device's tier lives in a new directory under $TMPDIR (tempfile's rules): under a
tmpfs (/dev/shm) the engine stores small writes through its mapping and rewrites
blocks in place, which a kill can interrupt at any instruction.

The LUN has dedup on by default; `plain` makes it a LUN with dedup off, whose large
overwrites are received straight into their slots (direct_write.cc): the bytes read
with the request's header stored with pwrite, the rest with one receive per run.

The client is Debian's libnbd (python3-libnbd): a real NBD client, one request at a
time, so "acknowledged" is exact.
"""
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
BLOCKS = 1024  # a 4 MiB LUN
STORED, ADMIN = sys.argv[1], sys.argv[2]
ITERATIONS = int(sys.argv[3]) if len(sys.argv) > 3 else 200
MODE = sys.argv[4] if len(sys.argv) > 4 else "dedup"
if MODE not in ("dedup", "plain"):
    sys.exit(f"stored_crash_test.py: mode {MODE!r}: want dedup or plain")


def start(work):
    return start_stored(STORED, work, "crash", [f"ssd={work}/ssd:256MiB"], log_level="warn")


def pattern(v):
    # A block holding value v: its 16 bits repeated (0: zeros).
    return v.to_bytes(2, "little") * (BS // 2)


def block_value(data):
    v = int.from_bytes(data[:2], "little")
    return v if data == pattern(v) else None


def main():
    work = tempfile.mkdtemp(prefix="strata-crash-")
    rng = random.Random(int(os.environ.get("STRATA_CRASH_SEED", "12345")))
    proc, ready = start(work)
    subprocess.run([ADMIN, "--insecure", "--server", ready["grpc"], "lun", "create", "crash",
                    "--size", str(BLOCKS * BS)] + (["--dedup"] if MODE == "dedup" else []),
                   check=True, stdout=subprocess.DEVNULL)
    # allowed[b]: values block b may show after a crash. It starts as the durable
    # value; writes since the last durable point add theirs.
    allowed = [{0} for _ in range(BLOCKS)]
    last = [0] * BLOCKS
    history = [[] for _ in range(BLOCKS)]  # (iteration, event) for failure reports
    checked = acked = durable_points = 0
    failures = []
    for it in range(ITERATIONS + 1):  # the last round only checks
        if it > 0:
            proc, ready = start(work)
        host, port = ready["nbd"][0].rsplit(":", 1)
        h = nbd.NBD()
        h.set_export_name("crash")
        h.connect_tcp(host, port)
        image = h.pread(BLOCKS * BS, 0)
        for b in range(BLOCKS):
            v = block_value(image[b * BS:(b + 1) * BS])
            checked += 1
            if v is None:
                failures.append(f"iteration {it}: block {b} is torn")
            elif v not in allowed[b]:
                failures.append(f"iteration {it}: block {b} shows {v}, "
                                f"allowed {sorted(allowed[b])}; history {history[b][-8:]}")
            else:
                if allowed[b] != {v}:
                    history[b].append((it, f"seen {v}"))
                allowed[b] = {v}
                last[b] = v
        if failures or it == ITERATIONS:
            h.shutdown()
            stop_stored(proc)
            break
        killer = threading.Timer(rng.uniform(0.01, 0.25), lambda p=proc: p.send_signal(signal.SIGKILL))
        killer.start()
        try:
            while True:
                r = rng.random()
                if r < 0.08:
                    h.flush()
                    durable_points += 1
                    for b in range(BLOCKS):
                        if history[b] and history[b][-1][1] != "flushed":
                            history[b].append((it, "flushed"))
                    for b in range(BLOCKS):
                        allowed[b] = {last[b]}
                    continue
                if r > 0.85:
                    # A run of blocks in one request (8-256 KiB): a dedup LUN receives
                    # these straight into free slots of its tier, each block hashed as it
                    # lands (PlacedIncomingWrite), and maps them in one section; a plain
                    # LUN receives 32 KiB and more into the blocks' own slots when they
                    # are written already (DirectWrite).
                    n = rng.choice((2, 4, 8, 16, 64))
                    b = rng.randrange(BLOCKS // n) * n
                    # Mostly new values (new slots; what they replace is freed at the
                    # next flush, and later runs land in those), some of the few shared.
                    vals = [rng.randrange(40, 65536) if rng.random() < 0.8 else rng.randrange(1, 40)
                            for _ in range(n)]
                    fua = rng.random() < 0.2
                    for i, v in enumerate(vals):
                        allowed[b + i].add(v)
                        history[b + i].append((it, f"run write {v}{' fua' if fua else ''}"))
                    h.pwrite(b"".join(pattern(v) for v in vals), b * BS,
                             nbd.CMD_FLAG_FUA if fua else 0)
                    acked += 1
                    for i, v in enumerate(vals):
                        history[b + i].append((it, "acked"))
                        last[b + i] = v
                        if fua:
                            allowed[b + i] = {v}
                    if fua:
                        durable_points += 1
                    continue
                b = rng.randrange(BLOCKS)
                # Few values (dedup shares blocks), and some new ones: a block that holds
                # bytes no other block holds is rewritten in its own slot (on an in-memory
                # tier, through its redo log).
                v = rng.randrange(1, 40) if rng.random() < 0.7 else rng.randrange(40, 65536)
                fua = r < 0.25
                if r < 0.33 and v % 5 == 0:
                    v = 0
                allowed[b].add(v)  # it may land even if the ack never comes
                history[b].append((it, f"{'zero' if v == 0 else 'write'} {v}{' fua' if fua else ''}"))
                if v == 0:
                    h.zero(BS, b * BS, nbd.CMD_FLAG_FUA if fua else 0)
                else:
                    h.pwrite(pattern(v), b * BS, nbd.CMD_FLAG_FUA if fua else 0)
                acked += 1
                history[b].append((it, "acked"))
                last[b] = v
                if fua:
                    allowed[b] = {v}
                    durable_points += 1
        except nbd.Error:
            pass  # the daemon died under us
        killer.join()
        proc.wait()
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
    print(f"crash test ({MODE} LUN): {ITERATIONS} kill -9 cycles, {acked} acknowledged writes, "
          f"{durable_points} durable points, {checked} block checks")
    passed = 0 if failures else 1
    print(f"{passed} passed, {1 - passed} failed")
    if not failures:
        subprocess.run(["rm", "-rf", work])
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
