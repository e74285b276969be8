"""What machine a benchmark ran on, as one line."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path


def describe() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return f"{cpu}, {os.cpu_count()} cores{mem}, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def load(seconds: float = 1.0) -> str:
    """The load averages, and the processes that used the CPUs most over `seconds` (this
    process and its children left out): what else the figures shared the machine with."""
    try:
        one, five, fifteen = Path("/proc/loadavg").read_text().split()[:3]
    except (OSError, ValueError):
        return "unknown"
    before = _cpu_ticks()
    time.sleep(seconds)
    after = _cpu_ticks()
    hz = os.sysconf("SC_CLK_TCK")
    used = sorted(((after[p][0] - before[p][0], after[p][1]) for p in after if p in before), reverse=True)
    busy = ", ".join(f"{100 * ticks / hz / seconds:.0f}% {name}" for ticks, name in used[:4] if ticks)
    return f"{one} {five} {fifteen} (1, 5, 15 min) on {os.cpu_count()} cores; busiest over {seconds:g} s: {busy or 'none'}"


def _cpu_ticks() -> dict[int, tuple[int, str]]:
    """pid -> (user + system clock ticks so far, command line), for the other processes."""
    found = {}
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2:].split()
            if int(entry.name) == me or int(fields[1]) == me:  # fields[1]: the parent's pid
                continue
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            found[int(entry.name)] = (int(fields[11]) + int(fields[12]), cmd[:80] or stat[stat.index("(") + 1:stat.rindex(")")])
        except (OSError, ValueError, IndexError):
            continue
    return found
