#!/usr/bin/env python3
"""Records what real NBD clients send, as seeds for the nbd fuzz target.

Starts strata-nbd-testserver with the fuzz target's exports, puts a recording TCP proxy in front
of it, runs real clients (nbdinfo, qemu-io, nbdcopy) through the proxy, and writes each
connection's client-to-server bytes to OUT/<client>-<n>.

Usage: capture_nbd_seeds.py TESTSERVER OUT
"""
import os
import socket
import subprocess
import sys
import tempfile
import threading


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Recorder:
    def __init__(self, upstream_port):
        self.upstream = upstream_port
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.captures = []
        self.lock = threading.Lock()
        threading.Thread(target=self.accept_loop, daemon=True).start()

    def accept_loop(self):
        while True:
            client, _ = self.sock.accept()
            upstream = socket.create_connection(("127.0.0.1", self.upstream), timeout=30)
            buf = bytearray()
            with self.lock:
                self.captures.append(buf)
            threading.Thread(target=self.pump, args=(client, upstream, buf), daemon=True).start()
            threading.Thread(target=self.pump, args=(upstream, client, None), daemon=True).start()

    @staticmethod
    def pump(src, dst, record):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if record is not None:
                    record.extend(data)
                dst.sendall(data)
        except OSError:
            pass
        for s in (dst,):
            try:
                s.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def take(self):
        with self.lock:
            out = [bytes(b) for b in self.captures]
            self.captures.clear()
        return out


def main():
    testserver, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        ready = os.path.join(tmp, "ready")
        server = subprocess.Popen(
            [testserver, "--export", "=1MiB:bs=512", "--export", "ro=64KiB:ro",
             "--export", "private=64KiB:allow=192.0.2.99", "--portal", f"127.0.0.1:{port}",
             "--ready-file", ready, "--threads-per-connection", "1", "--log-level", "warn"])
        try:
            for _ in range(200):
                if os.path.exists(ready):
                    break
                threading.Event().wait(0.05)
            else:
                sys.exit("testserver did not become ready")
            rec = Recorder(port)
            uri = f"nbd://127.0.0.1:{rec.port}"
            data = os.path.join(tmp, "data")
            with open(data, "wb") as f:
                f.write(b"strata" * 1000)
            clients = {
                "nbdinfo": ["nbdinfo", uri],
                "nbdinfo-list": ["nbdinfo", "--list", uri],
                "nbdinfo-ro": ["nbdinfo", uri + "/ro"],
                "nbdinfo-private": ["nbdinfo", uri + "/private"],
                "qemu-io-rw": ["qemu-io", "-f", "raw", "-c", "write -P 0x5a 0 4k",
                               "-c", "read -P 0x5a 0 4k", "-c", "write -z 8k 4k",
                               "-c", "discard 16k 4k", "-c", "flush",
                               "-c", "write -F 32k 512", "-c", "read 1048064 512", uri],
                "qemu-io-ro": ["qemu-io", "-f", "raw", "-r", "-c", "read 0 4k", uri + "/ro"],
                "qemu-io-ro-write": ["qemu-io", "-f", "raw", "-c", "write 0 4k", uri + "/ro"],
                "nbdcopy-in": ["nbdcopy", data, uri],
                "nbdcopy-out": ["nbdcopy", "--", uri, "-"],
            }
            for name, cmd in clients.items():
                subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               timeout=60, check=False)
                threading.Event().wait(0.3)  # let the proxy threads drain (a seed tool, not a test)
                for i, buf in enumerate(rec.take()):
                    if buf:
                        with open(os.path.join(out, f"{name}-{i}"), "wb") as f:
                            f.write(buf)
        finally:
            server.terminate()
            server.wait(timeout=10)


if __name__ == "__main__":
    main()
