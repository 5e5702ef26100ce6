"""Starting strata-stored and calling strata-admin from Python tests and benchmarks."""
import json
import os
import signal
import subprocess
import threading
import time


def start_stored(stored, work, name, tiers, portals=1, extra=(), log_level="info"):
    """Starts strata-stored with `tiers` ("ssd=PATH:SIZE", ...) and `portals` NBD portals
    on 127.0.0.N:0, waits (bounded) until it writes its ready file, and returns
    (process, {"grpc": ADDR, "nbd": [ADDR, ...]})."""
    ready = os.path.join(work, f"{name}.ready")
    if os.path.exists(ready):
        os.unlink(ready)
    cmd = [stored, "--device", name, "--grpc", "127.0.0.1:0", "--insecure", "--ready-file", ready,
           "--log-level", log_level]
    for t in tiers:
        cmd += ["--tier", t]
    for i in range(portals):
        cmd += ["--portal", f"127.0.0.{i + 1}:0"]
    log = open(os.path.join(work, f"{name}.log"), "a")
    proc = subprocess.Popen(cmd + list(extra), stdout=log, stderr=log)
    deadline = time.monotonic() + 30
    while not (os.path.exists(ready) and os.path.getsize(ready) > 0):
        if proc.poll() is not None:
            raise RuntimeError(f"strata-stored {name} exited with {proc.returncode}")
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"strata-stored {name} did not become ready")
        time.sleep(0.01)  # polling a file with a deadline, not synchronising by sleep
    with open(ready) as f:
        return proc, json.load(f)


def stop_stored(proc, timeout=60):
    """SIGTERMs strata-stored and reaps it; one still running after `timeout` s is killed
    (SIGKILL), so a daemon that hangs in its shutdown cannot hang the test. Returns the exit code."""
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        print(f"strata-stored (pid {proc.pid}) still running {timeout} s after SIGTERM: killed")
        proc.kill()
        return proc.wait()


def admin(admin_bin, server, *args, timeout=120):
    """Runs strata-admin -o json and returns the parsed reply; raises with its stderr.
    `timeout` bounds the whole command: `lun migrate --wait` polls for as long as the migration
    runs, with no deadline of its own (subprocess.TimeoutExpired then fails the test)."""
    out = subprocess.run([admin_bin, "--insecure", "--server", server, "-o", "json", *args],
                         capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"strata-admin {' '.join(args)}: {out.stderr.strip()}")
    return json.loads(out.stdout)


def move_luns(admin_bin, frm, to, names, parallel, timeout=600):
    """Moves the LUNs `names` from device `frm` to device `to` (each {"grpc": ADDR, ...}),
    at most `parallel` at once, each with `lun migrate --to-device --wait` bounded by
    `timeout` s; returns the replies in completion order, each checked DONE. The first
    error is raised once every worker has stopped."""
    todo, replies, errors = list(names), [], []
    lock = threading.Lock()

    def worker():
        while True:
            with lock:
                if not todo:
                    return
                name = todo.pop(0)
            try:
                m = admin(admin_bin, frm["grpc"], "lun", "migrate", name, "--to-device",
                          to["grpc"], "--wait", timeout=timeout)
                if m.get("state") != "MIGRATION_STATE_DONE":
                    raise RuntimeError(f"move of {name}: {m}")
                with lock:
                    replies.append(m)
            except Exception as e:  # noqa: BLE001 - reported after the join
                with lock:
                    errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(parallel)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return replies
