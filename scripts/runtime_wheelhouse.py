"""Build (idempotently) the wheelhouse the runtime-install test installs from, offline.

``infra/install-runtime.sh`` is every install step of the runtime image. The test runs it into
a fresh virtualenv with ``PIP_NO_INDEX`` from wheels kept under the git-ignored cache, so the
test never downloads and never races another test for the network. The wheelhouse is keyed by
the content of ``pyproject.toml``: a dependency change builds a new one, nothing else does.

    python scripts/runtime_wheelhouse.py          build if missing; print its path
    python scripts/runtime_wheelhouse.py --check  print its path, or exit 1 naming the command

Env: FLEETFLOW_CACHE_DIR (default <repo>/.cache).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BUILD_COMMAND = "make test-deps"


def wheelhouse_path() -> Path:
    root = Path(os.environ.get("FLEETFLOW_CACHE_DIR", REPO / ".cache")) / "runtime-wheels"
    return root / hashlib.sha256((REPO / "pyproject.toml").read_bytes()).hexdigest()[:16]


def _context_copy(dest: Path) -> Path:
    """pyproject, README and src: what fleetflow's wheel is built from."""
    dest.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, dest / name)
    shutil.copytree(REPO / "src", dest / "src", ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    return dest


def build(house: Path) -> None:
    partial = house.with_name(house.name + f".tmp{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    with tempfile.TemporaryDirectory() as tmp:
        source = _context_copy(Path(tmp) / "src")
        for args in (["wheel", "--quiet", "--wheel-dir", str(partial), f"{source}[aws,postgres]"],
                     ["download", "--quiet", "--dest", str(partial), "setuptools>=68", "wheel"]):  # fmt: skip
            subprocess.run([*pip, *args], check=True)
    for own in partial.glob("fleetflow-*.whl"):
        own.unlink()  # the install script must build fleetflow itself
    (partial / ".complete").touch()
    shutil.rmtree(house, ignore_errors=True)
    partial.rename(house)  # last, so an interrupted build never looks complete


def main(argv: list[str]) -> int:
    house = wheelhouse_path()
    if not (house / ".complete").exists():
        if "--check" in argv:
            print(f"the runtime wheelhouse {house} is missing: run `{BUILD_COMMAND}`", file=sys.stderr)
            return 1
        house.parent.mkdir(parents=True, exist_ok=True)
        with open(house.parent / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # one builder; a concurrent caller then finds it done
            if not (house / ".complete").exists():
                print(f"runtime_wheelhouse: building {house}", file=sys.stderr)
                build(house)
    print(house)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
