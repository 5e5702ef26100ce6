"""A VM guest's memory as the benchmarks meet it.

On a guest whose balloon reports free pages to its host (virtio_balloon free page
reporting), a page freed a moment ago is backed by the host, one freed a few seconds
earlier is not: writing into it costs a host fault. A benchmark that compares two copies
(cp against a device drain) then measures which of them allocated first more than the
code (docs/benchmarks.md, "The drain's figures and the VM's memory").
`reporting_off()` switches the reporting off for the benchmark's duration (root), and
`warm()` has the guest touch the memory the benchmark will use once, so every page
either copy allocates is one the host already backs.
"""
import contextlib
import os
import signal
import sys

PAGE_REPORTING_ORDER = "/sys/module/page_reporting/parameters/page_reporting_order"


def _orders():
    """The number of page orders the buddy allocator has (an order this high or more
    is never reported)."""
    with open("/proc/buddyinfo") as f:
        return max(len(line.split()) - 4 for line in f if line.strip())


@contextlib.contextmanager
def reporting_off():
    """Free page reporting off inside the block, restored after it; a no-op (with a
    line saying so) on a kernel that reports none."""
    if not os.path.exists(PAGE_REPORTING_ORDER):
        print("free page reporting: none on this kernel; nothing to switch off", flush=True)
        yield
        return
    with open(PAGE_REPORTING_ORDER) as f:
        before = f.read().strip()
    orders = _orders()
    with open(PAGE_REPORTING_ORDER, "w") as f:
        f.write(str(orders))
    print(f"free page reporting off: page_reporting_order {before} -> {orders} "
          "(restored after)", flush=True)
    # SIGTERM (a benchmark stopped by kill) unwinds through the restore too.
    old_term = signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        yield
    finally:
        with open(PAGE_REPORTING_ORDER, "w") as f:
            f.write(before)
        signal.signal(signal.SIGTERM, old_term)


def warm(directory, mib):
    """Writes `mib` MiB into a file in `directory` and removes it."""
    path = os.path.join(directory, "guest-memory-warm")
    chunk = b"\x5a" * (1 << 20)
    with open(path, "wb") as f:
        for _ in range(mib):
            f.write(chunk)
    os.remove(path)
