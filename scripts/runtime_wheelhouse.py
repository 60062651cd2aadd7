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
from concurrent.futures import ThreadPoolExecutor
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


def _pins(source: Path, tmp: Path) -> list[str] | None:
    """The exact pins of fleetflow[aws,postgres], resolved by uv in about a second when uv sits
    beside this Python (``make setup`` puts it there); None means pip must resolve itself."""
    uv = Path(sys.executable).parent / "uv"
    if not uv.exists():
        return None
    out = tmp / "pins.txt"
    done = subprocess.run([str(uv), "pip", "compile", "--quiet", "--no-header", "--no-annotate", "--python",
                           sys.executable, "--extra", "aws", "--extra", "postgres", "-o", str(out),
                           str(source / "pyproject.toml")], env={**os.environ, "UV_NATIVE_TLS": "1"})
    if done.returncode != 0:
        return None
    return [line.strip() for line in out.read_text().splitlines() if line.strip() and not line.startswith("#")]


def _fetch(pip: list[str], partial: Path, pins: list[str]) -> None:
    """``pip wheel --no-deps`` over the pins, in parallel slices: each pip call spends seconds
    on one index page, so one serial call over ~55 pins took 200 s on a busy machine."""
    slices = [pins[i::12] for i in range(12) if pins[i::12]]
    with ThreadPoolExecutor(len(slices)) as pool:
        for done in pool.map(lambda chunk: subprocess.run(
                [*pip, "wheel", "--quiet", "--no-deps", "--wheel-dir", str(partial), *chunk]), slices):
            if done.returncode != 0:
                raise subprocess.CalledProcessError(done.returncode, done.args)


def build(house: Path) -> None:
    partial = house.with_name(house.name + f".tmp{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    with tempfile.TemporaryDirectory() as tmp:
        source = _context_copy(Path(tmp) / "src")
        pins = _pins(source, Path(tmp))
        if pins is None:
            subprocess.run([*pip, "wheel", "--quiet", "--wheel-dir", str(partial), f"{source}[aws,postgres]"], check=True)
        else:
            _fetch(pip, partial, pins)
        subprocess.run([*pip, "download", "--quiet", "--dest", str(partial), "setuptools>=68", "wheel"], check=True)
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
