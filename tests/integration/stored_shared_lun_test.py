#!/usr/bin/python3
"""A shared multi-writer LUN: two NBD clients (python3-libnbd), one per portal, write
and read the same blocks at once. Safe at block granularity means: every read
returns a whole block one writer wrote (never a mix of two), and afterwards every
block holds the last write of one of the writers.

usage: stored_shared_lun_test.py STORED ADMIN
"""
import os
import random
import subprocess
import sys
import tempfile
import threading
import time

import nbd

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from stored import start_stored, stop_stored  # noqa: E402

BS = 4096
BLOCKS = 64  # a small hot region, so the writers collide constantly
STORED, ADMIN = sys.argv[1], sys.argv[2]


def main():
    work = tempfile.mkdtemp(prefix="strata-shared-")
    p, r = start_stored(STORED, work, "shared", [f"ssd={work}/ssd:1GiB"], portals=2,
                        log_level="warn")
    subprocess.run([ADMIN, "--insecure", "--server", r["grpc"], "lun", "create", "db", "--size", "1MiB",
                    "--dedup"], check=True, stdout=subprocess.DEVNULL)
    written = [set() for _ in range(BLOCKS)]  # every tag ever written to a block
    lock = threading.Lock()
    errors = []

    def worker(wid, portal):
        host, port = portal.rsplit(":", 1)
        h = nbd.NBD()
        h.set_export_name("db")
        h.connect_tcp(host, port)
        rng = random.Random(wid)
        for seq in range(3000):
            b = rng.randrange(BLOCKS)
            if rng.random() < 0.6:
                tag = (wid << 24) | seq
                with lock:
                    written[b].add(tag)
                h.pwrite(tag.to_bytes(4, "little") * (BS // 4), b * BS)
            else:
                data = h.pread(BS, b * BS)
                tag = int.from_bytes(data[:4], "little")
                if data != tag.to_bytes(4, "little") * (BS // 4):
                    errors.append(f"writer {wid}: torn block {b}")
                elif tag != 0:
                    with lock:
                        if tag not in written[b]:
                            errors.append(f"writer {wid}: block {b} holds {tag:#x}, never written there")
        h.flush()
        h.shutdown()

    threads = [threading.Thread(target=worker, args=(i + 1, r["nbd"][i])) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    host, port = r["nbd"][0].rsplit(":", 1)
    h = nbd.NBD()
    h.set_export_name("db")
    h.connect_tcp(host, port)
    img = h.pread(BLOCKS * BS, 0)
    h.shutdown()
    whole = True
    for b in range(BLOCKS):
        d = img[b * BS:(b + 1) * BS]
        tag = int.from_bytes(d[:4], "little")
        if d != tag.to_bytes(4, "little") * (BS // 4) or (tag and tag not in written[b]):
            whole = False
            errors.append(f"final: block {b} is torn or foreign")
    stop_stored(p)
    subprocess.run(["rm", "-rf", work])
    for e in errors[:10]:
        print("FAIL:", e)
    ok = not errors
    print(f"{'PASS' if ok else 'FAIL'}: two writers, 6000 requests on {BLOCKS} shared blocks, "
          f"every read whole, final image whole={whole}")
    print(f"{int(ok)} passed, {int(not ok)} failed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
