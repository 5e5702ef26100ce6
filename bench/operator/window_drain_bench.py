#!/usr/bin/python3
"""A device drained by a MaintenanceWindow, as a platform team runs one: the real kube-apiserver
(tests/testenv), strata-operator with its default flags, two real strata-stored devices (tiers on
tmpfs). Device a holds --luns LUNs of --mib MiB of random data; a window on a drains them to b
(drain.maxConcurrentMigrations --parallel), then `spec.finish: true` brings them back. Timed
from the window's own watch events: created -> phase InMaintenance (the drain), finish ->
phase Completed (the restore); against cp of the same bytes on the same file system in the same
run. Not a test: prints one line per run and a table of medians.

  bench/operator/window_drain_bench.py OPERATOR STORED ADMIN [--base-operator OTHER]
      [--luns 4] [--mib 512] [--parallel 2] [--runs 4] [--dir /dev/shm] [--testenv DIR]
      [--page-reporting off]

With --base-operator, each run drains once with each operator (alternating which goes first),
on fresh devices each time: an A/B of the operator's part of a drain (the devices' copy is the
same binary). cp and the drain take turns at allocating first (see drain_bench.py: on a VM whose
host takes back free memory, the one that meets recently freed pages runs faster);
--page-reporting off takes that out of the figures (bench/lib/guest_memory.py).
"""
import argparse
import contextlib
import http.client
import json
import os
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "../.."))
sys.path.insert(0, os.path.join(REPO, "tests/lib"))
from stored import admin, move_luns, start_stored, stop_stored  # noqa: E402

sys.path.insert(0, os.path.join(REPO, "bench/lib"))
import guest_memory  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("operator")
ap.add_argument("stored")
ap.add_argument("admin")
ap.add_argument("--base-operator", default="")
ap.add_argument("--admin-drain", action="store_true",
                help="also drain without the operator, each LUN by `strata-admin lun migrate "
                     "--wait` (bench/storage/drain_bench.py's way), on fresh devices in each run")
ap.add_argument("--luns", type=int, default=4)
ap.add_argument("--mib", type=int, default=512)
ap.add_argument("--parallel", type=int, default=2)
ap.add_argument("--runs", type=int, default=4)
ap.add_argument("--dir", default="/dev/shm")
ap.add_argument("--timeline", action="store_true",
                help="print when each LUN's phases were first seen in the window's status")
ap.add_argument("--testenv", default="", help="a control plane already up (its DIR); default: "
                "a private one, brought up and down here")
ap.add_argument("--page-reporting", choices=("keep", "off"), default="keep",
                help="off: the guest's free page reporting off during the benchmark (root), as in "
                     "bench/storage/drain_bench.py")
args = ap.parse_args()
PHASE_TIMEOUT = 600  # seconds for one phase change


def kubectl(*a, stdin=None):
    return subprocess.run(["kubectl", "--request-timeout=30s", *a], input=stdin, text=True,
                          check=True, capture_output=True).stdout


class WindowWatch:
    """The first time (time.perf_counter()) the window was seen in each status.phase, and when
    it was created, from a watch on the apiserver (no polling)."""

    def __init__(self, env, name):
        self.seen, self.cv = {}, threading.Condition()
        u = urllib.parse.urlparse(env["STRATA_KUBE_SERVER"])
        ctx = ssl.create_default_context(cafile=env["STRATA_KUBE_CA"])
        self.conn = http.client.HTTPSConnection(u.hostname, u.port, context=ctx, timeout=3600)
        sel = urllib.parse.quote(f"metadata.name={name}")
        self.conn.request("GET", f"/apis/strata.io/v1alpha1/maintenancewindows?watch=true"
                          f"&fieldSelector={sel}",
                          headers={"Authorization": f"Bearer {env['STRATA_KUBE_TOKEN']}"})
        self.resp = self.conn.getresponse()
        if self.resp.status != 200:
            raise RuntimeError(f"watch: HTTP {self.resp.status}")
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        try:
            for line in self.resp:
                now = time.perf_counter()
                ev = json.loads(line)
                status = ev["object"].get("status", {})
                phase = status.get("phase", "")
                with self.cv:
                    self.seen.setdefault("ADDED" if ev["type"] == "ADDED" else "", now)
                    if phase:
                        self.seen.setdefault(phase, now)
                    if ev["object"].get("spec", {}).get("finish"):
                        self.seen.setdefault("finish", now)
                    for v in status.get("volumes", []):
                        self.seen.setdefault((v.get("lun"), v.get("phase")), now)
                    self.cv.notify_all()
        except (OSError, ValueError, AttributeError):
            pass  # closed by close()

    def timeline(self, t0):
        """Per LUN, when (ms after t0) each of its phases was first seen."""
        with self.cv:
            out = {}
            for k, t in self.seen.items():
                if isinstance(k, tuple):
                    out.setdefault(k[0], []).append(f"{k[1]} {1000 * (t - t0):.0f}")
            return "; ".join(f"{lun}: " + ", ".join(v) for lun, v in sorted(out.items()))

    def wait(self, phase):
        with self.cv:
            if not self.cv.wait_for(lambda: phase in self.seen or "Failed" in self.seen,
                                    PHASE_TIMEOUT):
                raise RuntimeError(f"window not {phase} within {PHASE_TIMEOUT} s")
            if phase not in self.seen:
                raise RuntimeError("window Failed")
            return self.seen[phase]

    def close(self):
        self.conn.sock.shutdown(2)
        self.conn.close()


def cp_peer(work, data, total):
    cpdir = os.path.join(work, "cp")
    os.makedirs(cpdir)
    t0 = time.perf_counter()
    subprocess.run(["cp", *data, cpdir], check=True)
    return total / (time.perf_counter() - t0)


def one_run(env, work, data, operator, run_id, cp_first):
    size = args.mib << 20
    total = size * args.luns
    res = {"cp_first": cp_first}
    devs, op, watch = [], None, None
    name = f"wdb-{run_id}"
    try:
        for d in ("a", "b"):
            os.makedirs(os.path.join(work, d, "sata"))
            devs.append(start_stored(args.stored, work, d, [f"ssd={work}/{d}/sata:16GiB"],
                                     log_level="warn"))
        (_, a), (_, b) = devs
        for i, src in enumerate(data):
            admin(args.admin, a["grpc"], "lun", "create", f"l{i}", "--size", f"{args.mib}MiB")
            subprocess.run(["nbdcopy", src, f"nbd://{a['nbd'][0]}/l{i}"], check=True)
        if operator is None:
            if cp_first:
                res["cp"] = cp_peer(work, data, total)
            t0 = time.perf_counter()
            move_luns(args.admin, a, b, [f"l{i}" for i in range(args.luns)], args.parallel)
            res["drain_s"] = time.perf_counter() - t0
            res["drain"] = total / res["drain_s"]
            if not cp_first:
                res["cp"] = cp_peer(work, data, total)
            t2 = time.perf_counter()
            move_luns(args.admin, b, a, [f"l{i}" for i in range(args.luns)], args.parallel)
            res["restore"] = total / (time.perf_counter() - t2)
            res["timeline"] = ""
            return res
        for d, dev in (("a", a), ("b", b)):
            kubectl("create", "-f", "-", stdin=json.dumps({
                "apiVersion": "strata.io/v1alpha1", "kind": "StorageDevice",
                "metadata": {"name": f"{name}-{d}",
                             "labels": {"strata.io/bench-run": name, "bench-device": d}},
                "spec": {"endpoint": dev["grpc"],
                         "tiers": [{"class": "ssd", "capacityBytes": 16 << 30}]}}))
        log = open(os.path.join(work, "operator.log"), "a")
        op = subprocess.Popen([operator, "--insecure", "--kubeconfig", env["KUBECONFIG"],
                               "--label-selector", f"strata.io/bench-run={name}",
                               "--metrics-addr", "0", "--health-addr", "127.0.0.1:0"],
                              stdout=log, stderr=log)
        deadline = time.monotonic() + 60
        for d in ("a", "b"):
            while kubectl("get", "storagedevice", f"{name}-{d}", "-o",
                          "jsonpath={.status.phase}") != "Online":
                if time.monotonic() > deadline or op.poll() is not None:
                    raise RuntimeError(f"StorageDevice {name}-{d} not Online")
                time.sleep(0.1)  # polling with a deadline, not synchronising by sleep

        if cp_first:
            res["cp"] = cp_peer(work, data, total)
        watch = WindowWatch(env, name)
        kubectl("create", "-f", "-", stdin=json.dumps({
            "apiVersion": "strata.io/v1alpha1", "kind": "MaintenanceWindow",
            "metadata": {"name": name, "labels": {"strata.io/bench-run": name}},
            "spec": {"deviceSelector": {"matchLabels": {"bench-device": "a",
                                                        "strata.io/bench-run": name}},
                     "schedule": {"start": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                  "duration": "1h"},
                     "drain": {"leadTime": "0s", "maxConcurrentMigrations": args.parallel,
                               "targetDeviceSelector": {"matchLabels": {
                                   "bench-device": "b", "strata.io/bench-run": name}}}}}))
        t1 = watch.wait("InMaintenance")
        t0 = watch.wait("ADDED")
        res["drain_s"] = t1 - t0
        res["drain"] = total / res["drain_s"]
        if not cp_first:
            res["cp"] = cp_peer(work, data, total)
        shutil.rmtree(os.path.join(work, "cp"))
        kubectl("patch", "maintenancewindow", name, "--type", "merge", "-p",
                '{"spec":{"finish":true}}')
        t3 = watch.wait("Completed")
        t2 = watch.wait("finish")  # the patch as the watch saw it (kubectl's start-up left out)
        res["restore"] = total / (t3 - t2)
        res["timeline"] = watch.timeline(t0) + f" (finish patched at {1000 * (t2 - t0):.0f})"
        held = admin(args.admin, a["grpc"], "lun", "list")["luns"]
        back = [lun["name"] for lun in held if not lun.get("moved_to")]
        if len(back) != args.luns:
            raise RuntimeError(f"after the restore a holds {back}")
    finally:
        if watch:
            watch.close()
        if op:
            op.terminate()
            op.wait(timeout=60)
        subprocess.run(["kubectl", "--request-timeout=30s", "patch", "maintenancewindow", name,
                        "--type", "merge", "-p", '{"metadata":{"finalizers":null}}'],
                       capture_output=True)
        subprocess.run(["kubectl", "--request-timeout=30s", "delete", "maintenancewindow,"
                        "storagedevice", "-l", f"strata.io/bench-run={name}", "--wait=false"],
                       capture_output=True)
        for p, _ in devs:
            stop_stored(p)
        for d in ("a", "b", "cp"):
            shutil.rmtree(os.path.join(work, d), ignore_errors=True)
    return res


def main():
    own_env = not args.testenv
    envdir = args.testenv or tempfile.mkdtemp(prefix="strata-wdb-env.")
    testenv = os.path.join(REPO, "tests/testenv/kube-testenv.sh")
    work = tempfile.mkdtemp(dir=args.dir, prefix="strata-wdb.")
    memory = contextlib.ExitStack()
    try:
        if args.page_reporting == "off":
            memory.enter_context(guest_memory.reporting_off())
            guest_memory.warm(work, 6 * args.luns * args.mib)
        if own_env:
            subprocess.run([testenv, "up", envdir], check=True, capture_output=True)
        env = {}
        with open(os.path.join(envdir, "env")) as f:
            for line in f:
                if "=" in line and not line.startswith("export"):
                    k, v = line.strip().split("=", 1)
                    env[k] = v.strip("'\"")
        env["KUBECONFIG"] = os.path.join(envdir, "kubeconfig")
        os.environ["KUBECONFIG"] = env["KUBECONFIG"]
        subprocess.run([os.path.join(REPO, "tests/operator/install_crds.sh"), env["KUBECONFIG"]],
                       check=True, capture_output=True)
        data = []
        for i in range(args.luns):
            p = os.path.join(work, f"data{i}")
            with open(p, "wb") as f:
                for _ in range(args.mib):
                    f.write(os.urandom(1 << 20))
            data.append(p)
        builds = [("new", args.operator)] + ([("base", args.base_operator)]
                                             if args.base_operator else []) + (
            [("strata-admin", None)] if args.admin_drain else [])
        rows = {b: [] for b, _ in builds}
        print(f"{args.luns} LUNs x {args.mib} MiB, maxConcurrentMigrations {args.parallel}, "
              f"tiers and cp in {args.dir}; {os.cpu_count()} CPUs")
        for r in range(args.runs):
            order = builds if r % 2 == 0 else builds[::-1]
            for b, op in order:
                res = one_run(env, work, data, op, f"{r}{b}", cp_first=(r // 2) % 2 == 0)
                rows[b].append(res)
                print(f"  run {r + 1} {b}: drain {res['drain'] / 2**20:.0f} MiB/s "
                      f"({res['drain_s']:.2f} s, {res['drain'] / res['cp']:.2f}x cp "
                      f"{res['cp'] / 2**20:.0f}, {'cp' if res['cp_first'] else 'drain'} first); "
                      f"restore {res['restore'] / 2**20:.0f} MiB/s; load average "
                      f"{os.getloadavg()[0]:.1f}", flush=True)
                if args.timeline:
                    print(f"    ms after creation: {res['timeline']}", flush=True)
        print()
        print("| operator | drain MiB/s | drain s | vs cp | restore MiB/s |")
        print("|---|---|---|---|---|")
        for b, _ in builds:
            med = lambda f: statistics.median(f(x) for x in rows[b])  # noqa: E731
            print(f"| {b} | {med(lambda x: x['drain']) / 2**20:.0f} | "
                  f"{med(lambda x: x['drain_s']):.2f} | {med(lambda x: x['drain'] / x['cp']):.2f} | "
                  f"{med(lambda x: x['restore']) / 2**20:.0f} |")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        memory.close()
        if own_env:
            subprocess.run([testenv, "down", envdir], capture_output=True)
            shutil.rmtree(envdir, ignore_errors=True)


main()
