"""The fork server's template packs its heap into huge pages (fleetflow/huge_pages.py): which
mappings qualify, and that a process doing it still forks children that see, and change, only
their own copy of its memory."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from fleetflow.huge_pages import HUGE_PAGE, collapsible_ranges

MAPS = """\
55d4c0000000-55d4c0a00000 rw-p 00000000 00:00 0                          [heap]
7f0000100000-7f0000700000 rw-p 00000000 00:00 0
7f0000800000-7f0000900000 rw-p 00000000 00:00 0
7f0001000000-7f0001400000 rw-p 00001000 08:01 1234                       /usr/lib/libpython3.11.so.1.0
7f0002000000-7f0002400000 r--p 00000000 00:00 0
7ffd00000000-7ffd00400000 rw-p 00000000 00:00 0                          [stack]
"""


def test_only_the_aligned_middle_of_anonymous_read_write_mappings_qualifies():
    ranges = list(collapsible_ranges(MAPS.splitlines()))
    assert ranges == [
        (0x55D4C0000000, 0x55D4C0A00000),  # the heap: 10 MiB, aligned at both ends
        (0x7F0000200000, 0x7F0000600000),  # 6 MiB unaligned: the 4 MiB of whole huge pages inside
    ]  # the 1 MiB mapping, the file's data, the read-only mapping and the stack do not
    assert all(low % HUGE_PAGE == 0 and high % HUGE_PAGE == 0 for low, high in ranges)


CHILD_CHECK = textwrap.dedent(
    """
    import os, sys
    from fleetflow.huge_pages import collapse_heap

    data = [str(i) * 8 for i in range(400_000)]  # tens of MB of heap
    collapsed = collapse_heap()
    if collapsed:
        rollup = open("/proc/self/smaps_rollup").read()
        huge_kib = int(rollup.split("AnonHugePages:")[1].split()[0])
        assert huge_kib * 1024 >= collapsed // 2, (huge_kib, collapsed)
    pid = os.fork()
    if pid == 0:
        ok = data[1234] == "1234" * 8
        data[1234] = "changed in the child"
        os._exit(0 if ok and data[1234] == "changed in the child" else 3)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    assert data[1234] == "1234" * 8  # the parent's copy is untouched
    print(collapsed)
    """
)


def test_a_packed_process_forks_children_with_their_own_memory():
    out = subprocess.run([sys.executable, "-c", CHILD_CHECK], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout.strip()) >= 0
