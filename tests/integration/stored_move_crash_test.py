#!/usr/bin/python3
"""Crash torture: kill -9 strata-stored during tier moves, device moves and clone creation.

usage: stored_move_crash_test.py STORED ADMIN [CYCLES]

Two real daemons, A and B (tiers ssd and sata each). Cycle i is of kind tier, device or
clone in turn; in each, a real NBD client (python3-libnbd) keeps writing with FUA (an
acknowledged write is durable) while strata-admin starts the operation, and a SIGKILL hits
at a random moment around the call (aimed from how long the call took when it was not
killed). Then the killed daemon(s) restart and:
- tier move of LUN "t" on A (ssd <-> sata): every acknowledged write of t is there; once
  the move has settled (a move cut by the crash is rolled back), the LUN is wholly on one
  tier (the other tier holds no block) and on the new one if the call was acknowledged;
- device move of a fresh LUN from A to B (A killed, and B too every other time): every
  acknowledged write is on the LUN's owner: B when A's record says moved_to B (always, if
  the call was acknowledged), else A. A cut move's copy on B is never a half LUN that a
  client can open: it is gone when B restarted, else either still incoming (listed with
  incoming set, not exported over NBD: opening it fails) or accepted by A just before the
  kill cut the switch (then whole and current; or, when B died before A heard the accept,
  a whole older image: A aborted and went on); a new move then replaces it, whole;
- clone of "t" on A: an acknowledged clone exists; any clone that exists is whole (each
  block the value it had before the call or one written during it, never torn); no other
  LUN appeared.
The seed is printed (STRATA_CRASH_SEED repeats a run). Every wait has a deadline; the only
sleeps are the bounded polls of a ready file or a migration state.
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
T_BLOCKS = 1024  # "t": 4 MiB, moved between tiers and cloned
D_BLOCKS = 512   # the device-move LUNs: 2 MiB each
STORED, ADMIN = sys.argv[1], sys.argv[2]
CYCLES = int(sys.argv[3]) if len(sys.argv) > 3 else 201
KINDS = ("tier", "device", "clone")
OTHER_TIER = {"ssd": "sata", "sata": "ssd"}
TIER_ENUM = {"ssd": "TIER_CLASS_SSD", "sata": "TIER_CLASS_SATA"}

failures = []
procs = []  # every daemon started; killed at exit whatever happened


def fail(msg):
    failures.append(msg)
    print("FAIL:", msg, flush=True)


def admin(server, *args, check=True):
    """strata-admin -o json -> (rc, parsed or stderr). A daemon that does not answer yet
    (UNAVAILABLE: a slow restart) is asked again until a 120 s deadline."""
    deadline = time.monotonic() + 120
    while True:
        out = subprocess.run([ADMIN, "--insecure", "--server", server, "--timeout", "30", "-o", "json", *args],
                             capture_output=True, text=True, timeout=120)
        if out.returncode == 0:
            return json.loads(out.stdout) if out.stdout.strip() else {}
        if "UNAVAILABLE" in out.stderr and time.monotonic() < deadline:
            continue
        if check:
            raise RuntimeError(f"strata-admin {' '.join(args)}: {out.stderr.strip()}")
        return None


def lun_names(server):
    return {x["name"] for x in admin(server, "lun", "list").get("luns", [])}


def connect(portal, export):
    host, port = portal.rsplit(":", 1)
    h = nbd.NBD()
    h.set_export_name(export)
    h.connect_tcp(host, port)
    return h


def nbd_opens(portal, export):
    """True when an NBD client can open `export` on `portal`."""
    try:
        connect(portal, export).shutdown()
        return True
    except nbd.Error:
        return False


class Model:
    """What a LUN must hold: per block the last acknowledged value and the values whose
    write was in flight (sent, not acknowledged) when the daemon died. A block is one byte
    value repeated (1..250; 0 = never written), so a torn block shows."""

    def __init__(self, name, blocks):
        self.name, self.blocks = name, blocks
        self.last = [0] * blocks
        self.inflight = [set() for _ in range(blocks)]
        self.ever = [{0} for _ in range(blocks)]  # every value each block was sent

    def write(self, h, b, v):
        self.ever[b].add(v)
        self.inflight[b].add(v)
        h.pwrite(bytes([v]) * BS, b * BS, nbd.CMD_FLAG_FUA)
        self.last[b] = v
        self.inflight[b].discard(v)

    def verify(self, portal, what):
        """Reads the whole LUN through `portal`; fails on a lost acknowledged write or a
        torn block. A value that was in flight becomes the block's value."""
        h = connect(portal, self.name)
        image = h.pread(self.blocks * BS, 0)
        h.shutdown()
        bad = 0
        for b in range(self.blocks):
            blk = image[b * BS:(b + 1) * BS]
            got = blk[0] if blk == bytes([blk[0]]) * BS else None
            if got is None:
                bad += 1
                if bad <= 3:
                    fail(f"{what}: {self.name} block {b} is torn")
            elif got != self.last[b] and got not in self.inflight[b]:
                bad += 1
                if bad <= 3:
                    fail(f"{what}: {self.name} block {b} shows {got}, last acknowledged "
                         f"{self.last[b]}, in flight {sorted(self.inflight[b])}")
            else:
                self.last[b] = got
            self.inflight[b] = set()
        return image

    def verify_past_image(self, portal, what):
        """Every block untorn and holding a value it was sent at some time: a whole
        (maybe older) image, not a half-copied one."""
        h = connect(portal, self.name)
        image = h.pread(self.blocks * BS, 0)
        h.shutdown()
        for b in range(self.blocks):
            blk = image[b * BS:(b + 1) * BS]
            if blk != bytes([blk[0]]) * BS or blk[0] not in self.ever[b]:
                fail(f"{what}: {self.name} block {b} is torn or never written ({blk[0]})")
                return


class Writer(threading.Thread):
    """FUA writes to random blocks of `model` until stopped or the daemon dies."""

    def __init__(self, portal, model, rng_seed, counter):
        super().__init__()
        self.h = connect(portal, model.name)
        self.model = model
        self.rng = random.Random(rng_seed)
        self.counter = counter
        self.stop = threading.Event()
        self.during = [set() for _ in range(model.blocks)]  # values written during the call
        self.acked = 0

    def run(self):
        try:
            while not self.stop.is_set():
                b = self.rng.randrange(self.model.blocks)
                v = (self.counter % 250) + 1
                self.counter += 1
                self.during[b].add(v)
                self.model.write(self.h, b, v)
                self.acked += 1
        except nbd.Error:
            pass  # the daemon died under us

    def finish(self):
        self.stop.set()
        self.join(timeout=120)
        if self.is_alive():
            fail(f"writer on {self.model.name} did not stop within 120 s")
        try:
            self.h.shutdown()
        except nbd.Error:
            pass


class Daemons:
    def __init__(self, work):
        self.work = work
        self.proc, self.ready = {}, {}
        for name in ("a", "b"):
            self.start(name)

    def start(self, name):
        proc, ready = start_stored(STORED, self.work, f"crash-{name}",
                                   [f"ssd={self.work}/{name}/ssd:256MiB",
                                    f"sata={self.work}/{name}/sata:256MiB"], log_level="warn")
        procs.append(proc)
        self.proc[name], self.ready[name] = proc, ready

    def grpc(self, name):
        return self.ready[name]["grpc"]

    def portal(self, name):
        return self.ready[name]["nbd"][0]


def run_killed(cmd, victims, delay):
    """Runs `cmd`, SIGKILLs every process of `victims` `delay` s after it started, waits
    for both. Returns (exit code, seconds the call took)."""
    began = time.monotonic()
    call = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    killer = threading.Timer(delay, lambda: [p.send_signal(signal.SIGKILL) for p in victims])
    killer.start()
    try:
        rc = call.wait(timeout=120)
    except subprocess.TimeoutExpired:
        call.kill()
        rc = call.wait()
        fail(f"{' '.join(cmd[3:])} did not return within 120 s")
    took = time.monotonic() - began
    killer.join()
    for p in victims:
        p.wait(timeout=60)
    return rc, took


def wait_settled(server, lun):
    """Polls the LUN's move until it is no longer running (a move cut by a crash is rolled
    back after the restart). Deadline 120 s."""
    deadline = time.monotonic() + 120
    while True:
        m = admin(server, "lun", "migration", lun)
        if m.get("state") != "MIGRATION_STATE_RUNNING":
            return m
        if time.monotonic() > deadline:
            fail(f"{lun}: move still running 120 s after the restart: {m}")
            return m
        time.sleep(0.02)  # polling a state with a deadline, not synchronising by sleep


def tier_used(server):
    out = {}
    for t in admin(server, "device", "status").get("tiers", []):
        out[t["class"]] = int(t.get("used_bytes", 0))
    return out


def main():
    seed = int(os.environ.get("STRATA_CRASH_SEED", str(random.SystemRandom().randrange(1 << 31))))
    print(f"seed {seed} (STRATA_CRASH_SEED={seed} repeats this run)", flush=True)
    rng = random.Random(seed)
    work = tempfile.mkdtemp(prefix="strata-movecrash-")
    d = Daemons(work)
    a = d.grpc("a")
    admin(a, "lun", "create", "t", "--size", str(T_BLOCKS * BS), "--tier", "ssd")
    t = Model("t", T_BLOCKS)
    h = connect(d.portal("a"), "t")
    for b in range(0, T_BLOCKS, 2):
        t.write(h, b, (b % 250) + 1)
    h.shutdown()
    t_tier = "ssd"
    counter = 1
    # Per kind: a running estimate of an acknowledged call's duration (the kill is aimed
    # from 0.2x to 1.2x of it), and what happened.
    est = {k: 0.1 for k in KINDS}
    stats = {k: {"cycles": 0, "acked": 0, "cut": 0, "writes": 0, "incoming": 0, "accepted": 0, "accepted_stale": 0,
                 "dropped": 0} for k in KINDS}
    began = time.monotonic()

    for i in range(CYCLES):
        if failures:
            break
        kind = KINDS[i % len(KINDS)]
        st = stats[kind]
        st["cycles"] += 1
        delay = rng.uniform(0.2, 1.2) * est[kind]
        if kind == "tier":
            to = OTHER_TIER[t_tier]
            w = Writer(d.portal("a"), t, rng.randrange(1 << 30), counter)
            w.start()
            rc, took = run_killed([ADMIN, "--insecure", "--server", a, "lun", "migrate", "t", "--tier", to,
                                   "--wait"], [d.proc["a"]], delay)
            w.finish()
            counter = w.counter
            st["writes"] += w.acked
            d.start("a")
            a = d.grpc("a")
            t.verify(d.portal("a"), f"cycle {i} tier move {t_tier}->{to}, after restart")
            m = wait_settled(a, "t")
            lun = admin(a, "lun", "get", "t")
            now = [k for k, v in TIER_ENUM.items() if v == lun.get("tier")]
            if rc == 0:
                st["acked"] += 1
                est[kind] = 0.7 * est[kind] + 0.3 * took
                if now != [to]:
                    fail(f"cycle {i}: acknowledged tier move to {to}, LUN on {lun.get('tier')}")
            else:
                est[kind] = min(est[kind] * 1.3, 5.0)
                if m.get("state") not in (None, "MIGRATION_STATE_DONE"):
                    st["cut"] += 1
            if len(now) != 1:
                fail(f"cycle {i}: LUN t on tier {lun.get('tier')}")
                continue
            t_tier = now[0]
            used = tier_used(a)
            other = used.get(TIER_ENUM[OTHER_TIER[t_tier]], -1)
            if other != 0:
                fail(f"cycle {i}: t is on {t_tier} but {OTHER_TIER[t_tier]} still holds "
                     f"{other} bytes (half a move): {used}, move {m}")
            t.verify(d.portal("a"), f"cycle {i} tier move, settled on {t_tier}")
        elif kind == "device":
            name = f"d{i}"
            admin(a, "lun", "create", name, "--size", str(D_BLOCKS * BS), "--tier", "ssd")
            model = Model(name, D_BLOCKS)
            h = connect(d.portal("a"), name)
            for b in range(0, D_BLOCKS, 3):
                model.write(h, b, (b % 250) + 1)
            h.shutdown()
            w = Writer(d.portal("a"), model, rng.randrange(1 << 30), counter)
            w.start()
            victims = ["a", "b"] if rng.random() < 0.5 else ["a"]
            rc, took = run_killed([ADMIN, "--insecure", "--server", a, "lun", "migrate", name, "--to-device",
                                   d.grpc("b"), "--wait"], [d.proc[v] for v in victims], delay)
            w.finish()
            counter = w.counter
            st["writes"] += w.acked
            for v in victims:
                d.start(v)
            a, b = d.grpc("a"), d.grpc("b")
            # B's address changes with its restart: A's record names the old one.
            moved = admin(a, "lun", "get", name).get("moved_to", "")
            if rc == 0:
                st["acked"] += 1
                est[kind] = 0.7 * est[kind] + 0.3 * took
                if not moved:
                    fail(f"cycle {i}: acknowledged device move of {name}, A has no moved_to")
            else:
                est[kind] = min(est[kind] * 1.3, 5.0)
                if not moved:
                    st["cut"] += 1
            on_b = name in lun_names(b)
            if moved:
                if not on_b:
                    fail(f"cycle {i}: {name} moved to B by A's record, B has no such LUN")
                else:
                    model.verify(d.portal("b"), f"cycle {i} device move, on B")
            else:
                model.verify(d.portal("a"), f"cycle {i} device move, kept on A")
                if not on_b and "b" in victims:
                    st["dropped"] += 1  # B deleted the incoming copy at its restart
                if on_b:
                    there = admin(b, "lun", "get", name)
                    if there.get("incoming"):
                        # The move died before A accepted the copy: B keeps it hidden.
                        st["incoming"] += 1
                        if "b" in victims:
                            fail(f"cycle {i}: B restarted but kept the incoming copy of {name}")
                        if nbd_opens(d.portal("b"), name):
                            fail(f"cycle {i}: B exports the incoming (partial) copy of {name}")
                    elif "b" not in victims:
                        # Accepted (complete, flushed, verified, I/O paused) and A's kill
                        # cut the switch: a whole copy, as of the pause, which A's last
                        # acknowledged writes all precede.
                        st["accepted"] += 1
                        model.verify(d.portal("b"), f"cycle {i} accepted copy left on B")
                    else:
                        # B accepted and died before A heard it: A aborted and went on
                        # writing, and could not delete the copy (B was down). A whole
                        # image as of the pause, older than A's (the residual window).
                        st["accepted_stale"] += 1
                        model.verify_past_image(d.portal("b"), f"cycle {i} accepted copy on B")
                    # A new move replaces it, whole.
                    m = admin(a, "lun", "migrate", name, "--to-device", b, "--wait")
                    if m.get("state") != "MIGRATION_STATE_DONE":
                        fail(f"cycle {i}: the move of {name} after a cut one failed: {m}")
                    else:
                        model.verify(d.portal("b"), f"cycle {i} device move retried, on B")
            if name in lun_names(b):
                admin(b, "lun", "delete", name)
            admin(a, "lun", "delete", name)
        else:  # clone
            name = f"c{i}"
            before = list(t.last)
            w = Writer(d.portal("a"), t, rng.randrange(1 << 30), counter)
            w.start()
            rc, took = run_killed([ADMIN, "--insecure", "--server", a, "lun", "create", name, "--size",
                                   str(T_BLOCKS * BS), "--clone-from", "t"], [d.proc["a"]], delay)
            w.finish()
            counter = w.counter
            st["writes"] += w.acked
            d.start("a")
            a = d.grpc("a")
            t.verify(d.portal("a"), f"cycle {i} clone, t after restart")
            names = lun_names(a)
            if rc == 0:
                st["acked"] += 1
                est[kind] = 0.7 * est[kind] + 0.3 * took
                if name not in names:
                    fail(f"cycle {i}: acknowledged clone {name} is gone")
            else:
                est[kind] = min(est[kind] * 1.3, 5.0)
                if name not in names:
                    st["cut"] += 1
            stray = names - {"t", name}
            if stray:
                fail(f"cycle {i}: unexpected LUNs {sorted(stray)}")
            if name in names:
                c = Model(name, T_BLOCKS)
                c.last = before
                c.inflight = [set(w.during[b]) for b in range(T_BLOCKS)]
                c.verify(d.portal("a"), f"cycle {i} clone {name} (whole)")
                admin(a, "lun", "delete", name)

    elapsed = time.monotonic() - began
    for p in d.proc.values():
        if p.poll() is None:
            stop_stored(p)
    for k in KINDS:
        s = stats[k]
        print(f"{k:6s}: {s['cycles']} kill -9 cycles, {s['acked']} calls acknowledged before the "
              f"kill, {s['cut']} cut by it (not done after the restart), "
              f"{s['writes']} acknowledged FUA writes during the calls"
              + (f"; copies on the target of moves not done: {s['incoming']} incoming (not "
                 f"exported), {s['dropped']} absent after its restart, {s['accepted']} accepted "
                 f"whole (switch cut), {s['accepted_stale']} accepted whole but older (accept "
                 f"reply lost with B); 0 partial copies exported" if k == "device" else ""))
    print(f"move crash torture: {sum(s['cycles'] for s in stats.values())} cycles in "
          f"{elapsed:.1f} s (seed {seed})")
    passed = 0 if failures else 1
    print(f"{passed} passed, {1 - passed} failed")
    if not failures:
        subprocess.run(["rm", "-rf", work])
    else:
        print(f"daemon logs kept in {work}")
    return 1 if failures else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
