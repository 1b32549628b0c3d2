"""CPU and memory readings of processes and of the machine, for the benches (Linux ``/proc``
and ``getrusage``)."""

from __future__ import annotations

import os
import resource
import threading
from pathlib import Path


def own_cpu_seconds() -> float:
    """CPU time of this process, all threads (the signing pool included)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def process_cpu(pid: int, thread: int | None = None) -> float:
    """CPU time (user + system) process ``pid`` has used, all threads or only ``thread``
    (the main thread, which runs the event loop, is ``pid`` itself; Linux ``/proc``)."""
    path = f"/proc/{pid}/stat" if thread is None else f"/proc/{pid}/task/{thread}/stat"
    fields = Path(path).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_queue_wait(pid: int) -> float:
    """Seconds the main thread of ``pid`` has spent runnable but waiting for a CPU (Linux
    ``schedstat``): where a loaded machine, not the bridge, sets the pace."""
    return int(Path(f"/proc/{pid}/task/{pid}/schedstat").read_text().split()[1]) / 1e9


def machine_cpu() -> float:
    """CPU seconds the whole machine has spent busy (all cores; ``/proc/stat``)."""
    fields = [int(part) for part in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def peak_rss_mib(pid: int) -> float:
    """Peak resident memory of process ``pid`` (``VmHWM``), MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for process {pid}")


def threads_cpu() -> dict[str, float]:
    """CPU seconds each thread of this process has run (``schedstat``, nanoseconds), by
    thread name (threads of one pool, ``feedfed-sign_0``, ``feedfed-sign_1``, are summed
    under their prefix ``feedfed-sign``)."""
    spent: dict[str, float] = {}
    for thread in threading.enumerate():
        if thread.native_id is None:
            continue
        try:
            text = Path(f"/proc/self/task/{thread.native_id}/schedstat").read_text()
        except FileNotFoundError:
            continue  # ended meanwhile
        name = thread.name.rsplit("_", 1)[0]
        spent[name] = spent.get(name, 0.0) + int(text.split()[0]) / 1e9
    return spent
