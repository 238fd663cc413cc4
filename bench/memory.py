"""Resident memory of a running server and every process it started (from /proc)."""

from __future__ import annotations

from pathlib import Path

PROC = Path("/proc")


def _read(path: Path) -> str:
    """The text of a /proc file, or "" when its process (or thread) has exited meanwhile:
    children come and go while the tree is walked."""
    try:
        return path.read_text()
    except OSError:  # FileNotFoundError, or ESRCH/EACCES from a process being reaped
        return ""


def children(pid: int) -> list[int]:
    """The processes `pid` started, over all its threads; [] once it has exited."""
    try:
        tasks = list((PROC / str(pid) / "task").iterdir())
    except OSError:
        return []
    return [int(child) for task in tasks for child in _read(task / "children").split()]


def descendants(pid: int) -> list[int]:
    """`pid` and every process below it."""
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        queue += children(current)
    return found


def rss_mib(pid: int) -> float:
    """The resident set size of `pid` and its descendants, in MiB (a process that exits
    meanwhile counts as nothing)."""
    total_kib = 0
    for process in descendants(pid):
        for line in _read(PROC / str(process) / "status").splitlines():
            if line.startswith("VmRSS:"):
                total_kib += int(line.split()[1])
    return total_kib / 1024
