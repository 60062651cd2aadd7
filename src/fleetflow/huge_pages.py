"""Packing the fork server's template into transparent huge pages before it forks.

``fork`` copies the parent's page tables: one entry per 4 KiB page the template has touched
(~6,500 for its ~26 MB of heap), and every child tears its copy down again when it exits.
A 2 MiB huge page is one entry instead of 512, so after the template's heap is collapsed into
huge pages a fork copies and frees a fraction of the entries (measured here: ~1.7 -> ~1.0 ms of
system time in the template per fork, and ~1.9 -> ~1.0 ms in a child that exits at once).
A child that then writes to a shared huge page still copies only the 4 KiB page it writes
(the kernel splits the huge mapping on a copy-on-write fault), so children stay small.

After the collapse the ranges are marked ``MADV_NOHUGEPAGE``: the pages stay huge, but neither
a child's new faults there nor ``khugepaged`` in a long-running child make new huge pages
(which would give each child private 2 MiB copies of memory it shares now).

Best effort and Linux only: ``MADV_COLLAPSE`` needs Linux 6.1; elsewhere, or when the calls
fail, nothing changes but the speed.
"""

from __future__ import annotations

import sys
from typing import Iterable, Iterator

HUGE_PAGE = 2 * 1024 * 1024
MADV_HUGEPAGE, MADV_NOHUGEPAGE, MADV_COLLAPSE = 14, 15, 25
# Below this, a range is not worth the three system calls.
MIN_BYTES = HUGE_PAGE


def collapsible_ranges(maps_lines: Iterable[str]) -> Iterator[tuple[int, int]]:
    """The 2 MiB-aligned parts of the private anonymous read-write mappings (the heap and
    the interpreter's arenas) in ``/proc/self/maps`` lines (pure)."""
    for line in maps_lines:
        parts = line.split()
        if len(parts) < 5 or parts[1] != "rw-p" or parts[4] != "0":
            continue
        if len(parts) > 5 and parts[5] != "[heap]":
            continue  # a named mapping: a file, the stack, vdso...
        start, end = (int(x, 16) for x in parts[0].split("-"))
        low = -(-start // HUGE_PAGE) * HUGE_PAGE
        high = end // HUGE_PAGE * HUGE_PAGE
        if high - low >= MIN_BYTES:
            yield low, high


def collapse_heap() -> int:
    """Collapse this process's heap into huge pages; returns the bytes collapsed (0 where the
    system cannot)."""
    if not sys.platform.startswith("linux"):
        return 0
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        madvise = libc.madvise
        madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        with open("/proc/self/maps") as fh:
            ranges = list(collapsible_ranges(fh))
    except (OSError, AttributeError):
        return 0
    collapsed = 0
    for low, high in ranges:
        size = high - low
        if madvise(low, size, MADV_HUGEPAGE) != 0:
            continue
        if madvise(low, size, MADV_COLLAPSE) == 0:
            collapsed += size
        madvise(low, size, MADV_NOHUGEPAGE)  # no new huge pages here, in the template or a child
    return collapsed
