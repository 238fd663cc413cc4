"""Resident memory of a running server and every process it started (from /proc)."""

from __future__ import annotations

from pathlib import Path

PROC = Path("/proc")


def descendants(pid: int) -> list[int]:
    """`pid` and every process below it."""
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        for task in (PROC / str(current) / "task").glob("*"):
            children = (
                (task / "children").read_text().split() if (task / "children").exists() else []
            )
            queue += [int(child) for child in children]
    return found


def rss_mib(pid: int) -> float:
    """The resident set size of `pid` and its descendants, in MiB."""
    total_kib = 0
    for process in descendants(pid):
        for line in (PROC / str(process) / "status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total_kib += int(line.split()[1])
    return total_kib / 1024
