"""The suite's own layout rules, checked so a new file cannot quietly break collection.

Test folders have no ``__init__.py`` (pytest's default ``prepend`` import mode), so two test
modules with one basename in different folders collide: whichever is imported first wins and
the other errors at collection only when both are selected in one run.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_test_module_basenames_are_unique():
    names = Counter(path.name for path in TESTS.rglob("test_*.py"))
    assert [name for name, count in names.items() if count > 1] == []


def test_no_test_sleeps_to_wait_or_times_itself():
    """Waits go through tests/waiting.py; speed is measured in benchmarks/, never asserted."""
    offenders = []
    for path in TESTS.rglob("*.py"):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0].strip()
            if code.startswith("assert ") and ("monotonic()" in code or "perf_counter()" in code or "elapsed" in code):
                offenders.append(f"{path.relative_to(TESTS)}:{number}: {line.strip()}")
    assert offenders == []
