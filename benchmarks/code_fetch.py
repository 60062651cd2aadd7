"""Deployment code over S3: one bundle object versus one object per file.

    python benchmarks/code_fetch.py [FILES] [REPEATS] [--in-process]

Generates a project of FILES (default 500) small Python files in a temporary folder, starts a
local moto server (``tests/aws_server.py``) and measures, REPEATS times (default 5), how many
S3 requests and how much wall-clock time it takes to upload and to download that code:

* bundle: ``build_bundle`` + ``upload_bundle`` (HeadObject + one PutObject), and
  ``fetch_bundle`` (one GetObject, digest check, safe extraction);
* per-file, sequential: one ``put_file``/``get_file`` per file in a loop, as Prefect 2's
  ``RemoteFileSystem.put_directory`` uploads (the behaviour reported in the issue);
* per-file, batched: ``S3.put_directory``/``get_directory``, the same requests sent
  concurrently by s3fs.

Prints a table of medians and writes ``benchmarks/results/code_fetch.json``. moto's server runs
in a child process by default (``--in-process`` uses the tests' threaded server, which shares
this process's GIL and so slows every scenario). moto answers in well under a millisecond;
real S3 adds ~10-30 ms of latency per request, which widens the gap between one request and
five hundred.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Iterator

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # for aws_server (the same helper the tests use)

from aws_server import DUMMY_ENV, MotoServer, RequestCounter, create_bucket, credentials_for  # noqa: E402

from fleetflow.aws.s3 import S3  # noqa: E402
from fleetflow.bundles import build_bundle, fetch_bundle, upload_bundle  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "code_fetch.json"
BUCKET = "fleetflow-bench"


def make_project(root: Path, files: int) -> Path:
    """``files`` small modules (~1 KB each) spread over 25 packages, like a real flow repo."""
    for i in range(files):
        path = root / f"pkg_{i % 25:02d}" / f"module_{i:04d}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        body = "".join(f"def f_{i}_{j}(x):\n    return x * {j} + {i}\n\n" for j in range(20))
        path.write_text(f'"""Module {i}."""\n\n{body}')
    return root


def measure(store: S3, action: Callable[[], Any]) -> tuple[float, int]:
    """Seconds and S3 requests one run of ``action`` takes."""
    counter = RequestCounter().attach(store.filesystem.s3)
    try:
        start = time.perf_counter()
        action()
        return time.perf_counter() - start, counter.total
    finally:
        counter.detach(store.filesystem.s3)


def sequential_upload(store: S3, project: Path) -> None:
    """Prefect 2's put_directory: one put_file per file, one after the other."""
    fs, (bucket, prefix) = store.filesystem, store._bucket_and_prefix()
    for path in sorted(p for p in project.rglob("*") if p.is_file()):
        fs.put_file(str(path), f"{bucket}/{prefix}/files/{path.relative_to(project).as_posix()}")


def sequential_download(store: S3, dest: Path) -> None:
    fs, (bucket, prefix) = store.filesystem, store._bucket_and_prefix()
    base = f"{bucket}/{prefix}/files"
    for key in fs.find(base):
        target = dest / key[len(base) + 1 :]
        target.parent.mkdir(parents=True, exist_ok=True)
        fs.get_file(key, str(target))


def one_round(url: str, project: Path, work: Path, round_no: int) -> dict[str, tuple[float, int]]:
    """Every scenario once, each on a fresh prefix so nothing is skipped as already present."""
    creds = credentials_for(url)
    results: dict[str, tuple[float, int]] = {}

    bundle_store = S3(bucket_path=f"{BUCKET}/bundle-{round_no}", credentials=creds)
    start = time.perf_counter()
    bundle = build_bundle(project)
    results["bundle build (local, no S3)"] = (time.perf_counter() - start, 0)
    results["bundle upload"] = measure(bundle_store, lambda: upload_bundle(bundle, bundle_store))
    results["bundle re-upload (skipped)"] = measure(bundle_store, lambda: upload_bundle(bundle, bundle_store))
    results["bundle GET only"] = measure(bundle_store, lambda: bundle_store.get_bytes(bundle.key))
    cache = work / f"cache-{round_no}"
    fetch = lambda: fetch_bundle(bundle.digest, bundle_store, cache)  # noqa: E731
    results["bundle fetch (GET+verify+extract)"] = measure(bundle_store, fetch)

    seq_store = S3(bucket_path=f"{BUCKET}/seq-{round_no}", credentials=creds)
    results["per-file sequential up"] = measure(seq_store, lambda: sequential_upload(seq_store, project))
    seq_dest = work / f"seq-{round_no}"
    results["per-file sequential down"] = measure(seq_store, lambda: sequential_download(seq_store, seq_dest))

    dir_store = S3(bucket_path=f"{BUCKET}/dir-{round_no}", credentials=creds)
    results["put_directory (batched) up"] = measure(dir_store, lambda: dir_store.put_directory(str(project)))
    dir_dest = str(work / f"dir-{round_no}")
    results["get_directory (batched) down"] = measure(dir_store, lambda: dir_store.get_directory(None, dir_dest))
    return results


def summarise(rounds: list[dict[str, tuple[float, int]]]) -> list[dict[str, Any]]:
    rows = []
    for name in rounds[0]:
        seconds = [r[name][0] for r in rounds]
        rows.append(
            {
                "scenario": name,
                "requests": rounds[0][name][1],
                "median_ms": round(statistics.median(seconds) * 1000, 1),
                "best_ms": round(min(seconds) * 1000, 1),
            }
        )
    return rows


def machine_info() -> dict[str, Any]:
    versions = {name: metadata.version(name) for name in ("s3fs", "aiobotocore", "botocore", "moto")}
    return {
        "nproc": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),  # other work on the machine skews timings
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "versions": versions,
    }


def print_table(rows: list[dict[str, Any]], files: int, repeats: int, mode: str) -> None:
    print(f"\n{files} files, median of {repeats} rounds, local moto server ({mode})\n")
    print(f"{'scenario':<36}{'requests':>10}{'median ms':>12}{'best ms':>10}")
    for row in rows:
        print(f"{row['scenario']:<36}{row['requests']:>10}{row['median_ms']:>12.1f}{row['best_ms']:>10.1f}")


@contextmanager
def moto_process() -> Iterator[str]:
    """moto's server in its own process, so its CPU time does not compete with the client for
    this process's GIL (the tests use the in-process ``MotoServer``)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _wait_until_up(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(f"{url}/moto-api/", timeout=1).read()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@contextmanager
def moto_thread() -> Iterator[str]:
    with MotoServer() as server:
        yield server.url


def main() -> None:
    files = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    mode = "in-process" if "--in-process" in sys.argv else "subprocess"
    os.environ.update(DUMMY_ENV)
    server_cm = moto_thread() if mode == "in-process" else moto_process()
    with server_cm as url, tempfile.TemporaryDirectory() as tmp:
        server = SimpleNamespace(url=url)
        create_bucket(server.url, BUCKET)
        project = make_project(Path(tmp) / "project", files)
        rounds = [one_round(server.url, project, Path(tmp), i) for i in range(repeats)]
    rows = summarise(rounds)
    print_table(rows, files, repeats, mode)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    report = {"files": files, "repeats": repeats, "moto_server": mode, "machine": machine_info(), "results": rows}
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
