"""How long the runtime image's install step takes: ``infra/install-runtime.sh`` into a fresh
virtualenv, offline from the wheelhouse ``make test-deps`` builds (so the figure is the install
itself, not the network). The integration test checks that the installed runtime works; this
script owns the time budget that used to be asserted there.

    python benchmarks/runtime_install.py [REPEATS]
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
from _common import record, summary  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
REPEATS = int(sys.argv[1]) if len(sys.argv) > 1 else 3
BUDGET_SECONDS = 120


def wheelhouse() -> Path:
    out = subprocess.run([sys.executable, str(REPO / "scripts" / "runtime_wheelhouse.py")], check=True,
                         capture_output=True, text=True)  # fmt: skip
    return Path(out.stdout.strip())


def one_install(wheels: Path) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "src"
        source.mkdir()
        for name in ("pyproject.toml", "README.md"):
            shutil.copy2(REPO / name, source / name)
        shutil.copytree(REPO / "src", source / "src", ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
        env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
        env.update(PIP_FIND_LINKS=str(wheels), PIP_NO_INDEX="1", FLEETFLOW_HOME=str(Path(tmp) / "home"))
        started = time.monotonic()
        subprocess.run(["bash", str(REPO / "infra" / "install-runtime.sh"), sys.executable, str(source), str(Path(tmp) / "venv")],
                       env=env, check=True, capture_output=True)  # fmt: skip
        return time.monotonic() - started


def main() -> None:
    wheels = wheelhouse()
    values = [one_install(wheels) for _ in range(REPEATS)]
    stats = summary(values)
    print(f"infra/install-runtime.sh into a fresh virtualenv (offline wheelhouse), {REPEATS} runs:")
    print(f"  p50 {stats['p50']:.1f} s, max {stats['max']:.1f} s   (budget {BUDGET_SECONDS} s)")
    path = record("runtime_install", {"repeats": REPEATS, "seconds": stats, "budget_seconds": BUDGET_SECONDS,
                                      "within_budget": stats["max"] < BUDGET_SECONDS})
    print(f"recorded in {path}")


if __name__ == "__main__":
    main()
