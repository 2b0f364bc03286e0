"""Resident memory of a process tree, from /proc (the benchmarks' and the stress run's peak)."""

from __future__ import annotations

import os
from pathlib import Path


def tree_rss_bytes(root_pid: int) -> tuple[int, int]:
    """(resident bytes, process count) of ``root_pid`` and all its descendants."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    page = os.sysconf("SC_PAGE_SIZE")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            ppid, pages = int(fields[1]), int(fields[21])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
        rss[int(entry)] = pages * page
    total, count, pending = 0, 0, [root_pid]
    while pending:
        pid = pending.pop()
        total += rss.get(pid, 0)
        count += 1
        pending.extend(children.get(pid, []))
    return total, count
