"""How long a fresh clone takes to get ready for the suite: ``make setup`` (the project venv)
and ``make test-deps`` (provider mirror, checkov, runtime wheelhouse), each with an empty cache.
CI pays both on every run, so they count against the suite's 12-minute budget.

    python benchmarks/setup_install.py [--pip]   (--pip: FLEETFLOW_NO_UV=1, pip only, to compare)

The figure includes downloads from PyPI, so it moves with the network; uv's download cache
(~/.cache/uv) is left alone, as CI machines that keep it would.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
from _common import record  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    started = time.monotonic()
    subprocess.run(cmd, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return round(time.monotonic() - started, 1)


def main(argv: list[str]) -> None:
    pip_only = "--pip" in argv
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "FLEETFLOW_CACHE_DIR")}
    if pip_only:
        env["FLEETFLOW_NO_UV"] = "1"
    with tempfile.TemporaryDirectory() as tmp:
        clone = Path(tmp) / "repo"
        subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
        figures = {"setup_seconds": timed(["make", "setup"], clone, env),
                   "test_deps_seconds": timed(["make", "test-deps"], clone, env)}
    figures["total_seconds"] = round(figures["setup_seconds"] + figures["test_deps_seconds"], 1)
    with open("/proc/loadavg") as fh:
        figures["load_average_after"] = float(fh.read().split()[0])
    name = "setup_install_pip" if pip_only else "setup_install"
    print(f"{'pip only' if pip_only else 'uv'}: make setup {figures['setup_seconds']} s, "
          f"make test-deps {figures['test_deps_seconds']} s (load {figures['load_average_after']})")
    print(f"recorded in {record(name, {'installer': 'pip' if pip_only else 'uv', **figures})}")


if __name__ == "__main__":
    main(sys.argv[1:])
