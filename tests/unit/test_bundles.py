"""Tests for fleetflow.bundles: determinism, ignore rules, storage, fetching, safe extraction."""

from __future__ import annotations

import hashlib
import io
import multiprocessing
import os
import sys
import tarfile
from pathlib import Path

import pytest

from fleetflow.bundles import (
    DEFAULT_MAX_BYTES,
    Bundle,
    BundleStore,
    DirectoryBundleStore,
    build_bundle,
    bundle_key,
    fetch_bundle,
    iter_project_files,
    safe_extract,
    upload_bundle,
)
from fleetflow.exceptions import (
    BundleDigestMismatch,
    BundleError,
    BundleTooLarge,
    FleetflowError,
    UnsafeBundleError,
)

needs_symlinks = pytest.mark.skipif(sys.platform == "win32", reason="symlinks need privileges on Windows")


# --- helpers --------------------------------------------------------------------------------
def write_tree(root: Path, files: dict[str, str | bytes]) -> Path:
    """Create ``files`` (relative path -> content) under ``root``."""
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            content = content.encode()
        path.write_bytes(content)
    return root


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    write_tree(
        root,
        {
            "flows/train.py": "def train():\n    return 1\n",
            "flows/__init__.py": "",
            "run.sh": "#!/bin/sh\necho hi\n",
            "README.md": "# demo\n",
        },
    )
    (root / "run.sh").chmod(0o755)
    return root


def store_files(store_root: Path) -> list[Path]:
    """Every real file in a directory store, temporary files included."""
    return sorted(p for p in store_root.rglob("*") if p.is_file())


def archive_names(bundle: Bundle) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(bundle.data), mode="r:gz") as tar:
        return tar.getnames()


def tar_gz(*members: tuple[tarfile.TarInfo, bytes | None]) -> bytes:
    """Hand-build a .tar.gz from raw headers, the way an attacker would."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        for info, content in members:
            tar.addfile(info, io.BytesIO(content) if content is not None else None)
    return buffer.getvalue()


def reg(name: str, content: bytes = b"data") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(content)
    return info, content


def special(name: str, kind: bytes, linkname: str = "") -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info, None


# --- determinism ----------------------------------------------------------------------------
def test_same_tree_gives_same_digest_twice(project: Path) -> None:
    first, second = build_bundle(project), build_bundle(project)
    assert first.digest == second.digest
    assert first.data == second.data
    assert first.digest == hashlib.sha256(first.data).hexdigest()
    assert first.key == f"bundle-{first.digest}.tar.gz"
    assert first.file_count == 4
    assert first.size == len(first.data)


def test_digest_ignores_mtime_and_non_executable_permission_changes(project: Path) -> None:
    before = build_bundle(project).digest
    os.utime(project / "README.md", (1_000_000, 1_000_000))
    os.utime(project / "flows" / "train.py", None)  # like `touch`
    (project / "README.md").chmod(0o600)
    (project / "run.sh").chmod(0o700)  # still executable
    assert build_bundle(project).digest == before


def test_executable_bit_is_kept_and_changes_digest(project: Path) -> None:
    before = build_bundle(project).digest
    (project / "run.sh").chmod(0o644)
    assert build_bundle(project).digest != before


def test_content_or_name_change_gives_different_digest(project: Path) -> None:
    before = build_bundle(project).digest
    (project / "README.md").write_text("# demo!\n")
    changed = build_bundle(project).digest
    assert changed != before
    (project / "README.md").rename(project / "README.txt")
    assert build_bundle(project).digest not in (before, changed)


def test_same_tree_created_in_a_different_order_gives_same_digest(tmp_path: Path) -> None:
    files = {f"pkg/m{i}.py": f"x = {i}\n" for i in range(20)}
    one = write_tree(tmp_path / "one", files)
    two = write_tree(tmp_path / "two", dict(reversed(list(files.items()))))
    assert build_bundle(one).digest == build_bundle(two).digest


def test_archive_headers_are_normalised(project: Path) -> None:
    bundle = build_bundle(project)
    assert bundle.data[4:8] == b"\x00\x00\x00\x00"  # gzip header mtime
    with tarfile.open(fileobj=io.BytesIO(bundle.data), mode="r:gz") as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == sorted(m.name for m in members)
    for member in members:
        assert member.isreg()
        assert (member.mtime, member.uid, member.gid, member.uname, member.gname) == (0, 0, 0, "", "")
    modes = {m.name: m.mode for m in members}
    assert modes["run.sh"] == 0o755
    assert modes["README.md"] == 0o644


# --- which files --------------------------------------------------------------------------
def test_default_ignores_are_always_applied(tmp_path: Path) -> None:
    root = write_tree(
        tmp_path / "p",
        {
            ".git/config": "x",
            "__pycache__/a.cpython-311.pyc": "x",
            "pkg/__pycache__/b.cpython-311.pyc": "x",
            ".venv/lib/site.py": "x",
            ".env": "SECRET=1",
            "pkg/.env": "SECRET=2",
            "pkg/stale.pyc": "x",
            ".fleetflow/state.db": "x",
            "pkg/.fleetflow/cache": "x",
            "pkg/mod.py": "x",
            ".envrc": "kept: not an exact .env match",
            ".fleetflowignore": "!.env\n!*.pyc\n",  # defaults cannot be negated
        },
    )
    assert iter_project_files(root) == [".envrc", ".fleetflowignore", "pkg/mod.py"]


def test_fleetflowignore_patterns(tmp_path: Path) -> None:
    root = write_tree(
        tmp_path / "p",
        {
            ".fleetflowignore": "\n".join(
                [
                    "# comments and blank lines are fine",
                    "",
                    "data/",
                    "!data/keep.csv",  # cannot re-include inside an excluded dir (git semantics)
                    "*.log",
                    "!important.log",
                    "/rootonly.txt",
                    "notebooks/**/*.ipynb",
                ]
            ),
            "data/big.csv": "x",
            "data/keep.csv": "x",
            "src/data/inner.csv": "x",  # "data/" matches at any depth
            "app.log": "x",
            "logs/debug.log": "x",
            "important.log": "x",
            "rootonly.txt": "x",
            "sub/rootonly.txt": "x",
            "notebooks/a/b/explore.ipynb": "x",
            "notebooks/readme.md": "x",
            "main.py": "x",
        },
    )
    assert iter_project_files(root) == [
        ".fleetflowignore",
        "important.log",
        "main.py",
        "notebooks/readme.md",
        "sub/rootonly.txt",
    ]


def test_bundle_holds_exactly_the_listed_files(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "p", {"a.py": "1", "b/c.py": "2", ".env": "3", "x.pyc": "4"})
    bundle = build_bundle(root)
    assert archive_names(bundle) == iter_project_files(root) == ["a.py", "b/c.py"]
    assert bundle.file_count == 2


@needs_symlinks
def test_symlinks_inside_are_stored_as_files_and_others_skipped(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "p", {"real.py": "VALUE = 1\n", "pkg/mod.py": "m", ".env": "SECRET"})
    outside = write_tree(tmp_path / "outside", {"secret.txt": "do not ship"})
    (root / "alias.py").symlink_to("real.py")
    (root / "leak.txt").symlink_to(outside / "secret.txt")
    (root / "env_alias").symlink_to(".env")  # would smuggle an ignored file
    (root / "pkg_link").symlink_to("pkg", target_is_directory=True)
    (root / "outside_dir").symlink_to(outside, target_is_directory=True)
    (root / "dangling.py").symlink_to("missing.py")

    assert iter_project_files(root) == ["alias.py", "pkg/mod.py", "real.py"]
    with tarfile.open(fileobj=io.BytesIO(build_bundle(root).data), mode="r:gz") as tar:
        alias = tar.getmember("alias.py")
        assert alias.isreg()
        assert tar.extractfile(alias).read() == b"VALUE = 1\n"


def test_build_refuses_oversize_project_naming_the_big_file(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "p", {"small.py": "x", "data/huge.bin": b"0" * 5000})
    with pytest.raises(BundleTooLarge, match="data/huge.bin"):
        build_bundle(root, max_bytes=1000)
    with pytest.raises(BundleTooLarge, match="2 files"):
        build_bundle(root, max_members=1)


def test_build_refuses_empty_or_missing_project(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "p", {".env": "only ignored things"})
    with pytest.raises(BundleError, match="nothing to bundle"):
        build_bundle(root)
    with pytest.raises(BundleError, match="not a directory"):
        build_bundle(tmp_path / "missing")


# --- the directory store and uploads -------------------------------------------------------
def test_directory_store_is_a_bundle_store_and_validates_keys(tmp_path: Path) -> None:
    store = DirectoryBundleStore(tmp_path / "store")
    assert isinstance(store, BundleStore)
    store.put_bytes("a/b.bin", b"one")
    store.put_bytes("a/b.bin", b"two")
    assert store.exists("a/b.bin") and store.get_bytes("a/b.bin") == b"two"
    assert store_files(tmp_path / "store") == [tmp_path / "store" / "a" / "b.bin"]  # no temp files left
    assert not store.exists("missing")
    with pytest.raises(FileNotFoundError):
        store.get_bytes("missing")
    for bad in ("../escape", "/abs", "a/../../x", "", "a\\b"):
        with pytest.raises(BundleError):
            store.put_bytes(bad, b"x")
    assert not (tmp_path / "escape").exists()


def test_upload_skips_when_key_present(project: Path, tmp_path: Path) -> None:
    store_root = tmp_path / "store"
    store = DirectoryBundleStore(store_root)
    bundle = build_bundle(project)
    calls: list[tuple[int, int]] = []

    assert upload_bundle(bundle, store, progress=lambda done, total: calls.append((done, total))) is True
    assert store_files(store_root) == [store_root / bundle.key]
    mtime = (store_root / bundle.key).stat().st_mtime_ns

    assert upload_bundle(build_bundle(project), store, progress=lambda d, t: calls.append((d, t))) is False
    assert store_files(store_root) == [store_root / bundle.key]
    assert (store_root / bundle.key).stat().st_mtime_ns == mtime
    assert calls == [(0, bundle.size), (bundle.size, bundle.size)]
    assert (store_root / bundle.key).read_bytes() == bundle.data


def test_upload_refuses_bundle_whose_bytes_do_not_match_digest(project: Path, tmp_path: Path) -> None:
    good = build_bundle(project)
    forged = Bundle(digest=good.digest, data=good.data + b"!", file_count=1, size=len(good.data) + 1)
    store_root = tmp_path / "store"
    with pytest.raises(BundleDigestMismatch):
        upload_bundle(forged, DirectoryBundleStore(store_root))
    assert not store_root.exists() or store_files(store_root) == []


# --- fetching -----------------------------------------------------------------------------
@pytest.fixture
def uploaded(project: Path, tmp_path: Path) -> tuple[Bundle, DirectoryBundleStore]:
    store = DirectoryBundleStore(tmp_path / "store")
    bundle = build_bundle(project)
    upload_bundle(bundle, store)
    return bundle, store


def test_fetch_extracts_files_with_modes(uploaded, tmp_path: Path) -> None:
    bundle, store = uploaded
    path = fetch_bundle(bundle.digest, store, tmp_path / "cache")
    assert path == tmp_path / "cache" / bundle.digest
    assert (path / "flows" / "train.py").read_text() == "def train():\n    return 1\n"
    assert (path / "run.sh").stat().st_mode & 0o777 == 0o755
    assert (path / "README.md").stat().st_mode & 0o777 == 0o644
    assert sorted(os.listdir(tmp_path / "cache")) == [bundle.digest]  # no staging left behind


def test_fetch_verifies_digest(uploaded, tmp_path: Path) -> None:
    bundle, store = uploaded
    stored = tmp_path / "store" / bundle.key
    raw = bytearray(stored.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    stored.write_bytes(bytes(raw))
    actual = hashlib.sha256(stored.read_bytes()).hexdigest()
    with pytest.raises(BundleDigestMismatch) as info:
        fetch_bundle(bundle.digest, store, tmp_path / "cache")
    assert bundle.digest in str(info.value) and actual in str(info.value)
    assert not (tmp_path / "cache" / bundle.digest).exists()


def test_cache_hit_does_not_read_the_store(uploaded, tmp_path: Path) -> None:
    bundle, store = uploaded
    first = fetch_bundle(bundle.digest, store, tmp_path / "cache")
    (tmp_path / "store" / bundle.key).unlink()
    assert fetch_bundle(bundle.digest, store, tmp_path / "cache") == first
    with pytest.raises(BundleError, match=bundle.key):  # proves the store really is empty now
        fetch_bundle(bundle.digest, store, tmp_path / "other-cache")


def test_fetch_rejects_malformed_digest(uploaded, tmp_path: Path) -> None:
    _, store = uploaded
    for bad in ("../../etc", "ABC", "0" * 63, "g" * 64):
        with pytest.raises(BundleError, match="invalid bundle digest"):
            fetch_bundle(bad, store, tmp_path / "cache")
    assert not (tmp_path / "cache").exists()


def test_errors_share_the_fleetflow_root() -> None:
    for exc in (BundleError, UnsafeBundleError, BundleDigestMismatch, BundleTooLarge):
        assert issubclass(exc, FleetflowError)
    assert issubclass(UnsafeBundleError, BundleError) and issubclass(BundleTooLarge, BundleError)


class _LosingRaceStore:
    """A real directory store whose download finishes only after a rival fetch completed."""

    def __init__(self, inner: DirectoryBundleStore, cache_dir: Path):
        self.inner, self.cache_dir = inner, cache_dir
        self.rival: Path | None = None

    def exists(self, key: str) -> bool:
        return self.inner.exists(key)

    def put_bytes(self, key: str, data: bytes) -> None:
        self.inner.put_bytes(key, data)

    def get_bytes(self, key: str) -> bytes:
        digest = key.removeprefix("bundle-").removesuffix(".tar.gz")
        self.rival = fetch_bundle(digest, self.inner, self.cache_dir)
        return self.inner.get_bytes(key)


def test_losing_the_install_race_uses_the_winners_copy(uploaded, tmp_path: Path) -> None:
    bundle, store = uploaded
    racing = _LosingRaceStore(store, tmp_path / "cache")
    path = fetch_bundle(bundle.digest, racing, tmp_path / "cache")
    assert racing.rival == path
    assert sorted(os.listdir(tmp_path / "cache")) == [bundle.digest]
    assert (path / "flows" / "train.py").is_file()


def _fetch_in_child(digest: str, store_root: str, cache_dir: str, barrier, results) -> None:
    barrier.wait()
    try:
        results.put(str(fetch_bundle(digest, DirectoryBundleStore(Path(store_root)), Path(cache_dir))))
    except BaseException as exc:  # report instead of dying silently
        results.put(f"error: {exc!r}")


def test_concurrent_fetch_from_processes(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "p", {f"pkg/m{i:03}.py": f"X = {i}\n" * 50 for i in range(300)})
    store = DirectoryBundleStore(tmp_path / "store")
    bundle = build_bundle(root)
    upload_bundle(bundle, store)
    ctx = multiprocessing.get_context("spawn")
    workers = 4
    barrier, results = ctx.Barrier(workers), ctx.Queue()
    args = (bundle.digest, str(tmp_path / "store"), str(tmp_path / "cache"), barrier, results)
    procs = [ctx.Process(target=_fetch_in_child, args=args) for _ in range(workers)]
    for proc in procs:
        proc.start()
    outcomes = [results.get(timeout=120) for _ in procs]
    for proc in procs:
        proc.join(timeout=60)
    assert outcomes == [str(tmp_path / "cache" / bundle.digest)] * workers
    assert sorted(os.listdir(tmp_path / "cache")) == [bundle.digest]
    extracted = tmp_path / "cache" / bundle.digest / "pkg"
    assert len(os.listdir(extracted)) == 300
    assert (extracted / "m299.py").read_text() == "X = 299\n" * 50


# --- hostile archives ----------------------------------------------------------------------
def _hostile_cases(outside: Path) -> dict[str, tuple[bytes, str, str]]:
    """name -> (archive, offending member, why); each archive starts with a harmless file."""
    ok = reg("harmless.py", b"print('ok')")
    absolute = str(outside / "abs_evil")
    return {
        "absolute": (tar_gz(ok, reg(absolute)), absolute, "absolute"),
        "dotdot": (tar_gz(ok, reg("../evil")), "../evil", "'..'"),
        "nested-dotdot": (tar_gz(ok, reg("a/../../evil")), "a/../../evil", "'..'"),
        "symlink": (tar_gz(ok, special("passwd", tarfile.SYMTYPE, "/etc/passwd")), "passwd", "symlink"),
        "symlink-inside": (tar_gz(ok, special("alias", tarfile.SYMTYPE, "harmless.py")), "alias", "symlink"),
        "hardlink-outside": (tar_gz(ok, special("hl", tarfile.LNKTYPE, "/etc/passwd")), "hl", "hard link"),
        "hardlink-dotdot": (tar_gz(ok, special("hl", tarfile.LNKTYPE, "../../outside")), "hl", "hard link"),
        "char-device": (tar_gz(ok, special("null", tarfile.CHRTYPE)), "null", "device"),
        "block-device": (tar_gz(ok, special("sda", tarfile.BLKTYPE)), "sda", "device"),
        "fifo": (tar_gz(ok, special("pipe", tarfile.FIFOTYPE)), "pipe", "fifo"),
        "reserved": (tar_gz(ok, reg(".fleetflow/bundle.json")), ".fleetflow/bundle.json", "reserved"),
    }


HOSTILE = sorted(_hostile_cases(Path("/x")))


@pytest.mark.parametrize("case", HOSTILE)
def test_safe_extract_rejects_hostile_archive_and_writes_nothing(case: str, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    data, member, reason = _hostile_cases(outside)[case]
    sandbox = tmp_path / "sandbox"
    dest = sandbox / "dest"
    sandbox.mkdir()
    with pytest.raises(UnsafeBundleError) as info:
        safe_extract(data, dest)
    assert f"archive member {member!r}" in str(info.value) and reason in str(info.value)
    assert not dest.exists()  # validated before anything was written
    assert os.listdir(sandbox) == [] and os.listdir(outside) == []
    assert not (tmp_path / "evil").exists()


@pytest.mark.parametrize("case", HOSTILE)
def test_fetch_of_hostile_archive_leaves_no_trace(case: str, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    data, _, _ = _hostile_cases(outside)[case]
    digest = hashlib.sha256(data).hexdigest()
    store = DirectoryBundleStore(tmp_path / "store")
    store.put_bytes(bundle_key(digest), data)  # digest matches: only extraction can catch it
    with pytest.raises(UnsafeBundleError):
        fetch_bundle(digest, store, tmp_path / "cache")
    assert os.listdir(tmp_path / "cache") == []  # staging directory removed
    assert os.listdir(outside) == []


def test_safe_extract_accepts_a_plain_archive(tmp_path: Path) -> None:
    root, pkg = special(".", tarfile.DIRTYPE), special("pkg", tarfile.DIRTYPE)
    data = tar_gz(root, pkg, reg("pkg/a.py", b"A"), reg("./b.py"))
    assert safe_extract(data, tmp_path / "dest") == 2
    assert (tmp_path / "dest" / "pkg" / "a.py").read_bytes() == b"A"
    assert (tmp_path / "dest" / "b.py").read_bytes() == b"data"


def test_oversize_contents_rejected(tmp_path: Path) -> None:
    data = tar_gz(reg("small.py", b"x" * 10), reg("big.bin", b"0" * 5000))
    with pytest.raises(BundleTooLarge, match="big.bin"):
        safe_extract(data, tmp_path / "dest", max_bytes=1000)
    assert not (tmp_path / "dest").exists()
    assert safe_extract(data, tmp_path / "ok", max_bytes=5010) == 2  # the bound, not the data, decided


def test_too_many_members_rejected(tmp_path: Path) -> None:
    data = tar_gz(*(reg(f"m{i}.py") for i in range(5)))
    with pytest.raises(BundleTooLarge, match="more than 3 members"):
        safe_extract(data, tmp_path / "dest", max_members=3)
    assert not (tmp_path / "dest").exists()
    assert safe_extract(data, tmp_path / "ok", max_members=5) == 5


def test_huge_decompressed_stream_rejected_before_parsing(tmp_path: Path) -> None:
    info, content = reg("tiny.py", b"x")
    info.pax_headers = {"comment": "A" * 5_000_000}  # 5 MB of header from a few KB of gzip
    data = tar_gz((info, content))
    assert len(data) < 100_000
    with pytest.raises(BundleTooLarge, match="decompresses"):
        safe_extract(data, tmp_path / "dest", max_bytes=1000, max_members=2)
    assert not (tmp_path / "dest").exists()
    assert safe_extract(data, tmp_path / "ok") == 1  # within the default bound it is harmless


def test_fetch_oversize_bundle_raises_too_large(tmp_path: Path) -> None:
    data = tar_gz(reg("big.bin", b"0" * 5000))
    digest = hashlib.sha256(data).hexdigest()
    store = DirectoryBundleStore(tmp_path / "store")
    store.put_bytes(bundle_key(digest), data)
    with pytest.raises(BundleTooLarge):
        fetch_bundle(digest, store, tmp_path / "cache", max_bytes=1000)
    assert os.listdir(tmp_path / "cache") == []
    assert DEFAULT_MAX_BYTES == 1 << 30


def test_garbage_and_truncated_archives_raise_bundle_error(tmp_path: Path) -> None:
    good = tar_gz(reg("a.py"))
    for data in (b"not a gzip at all", good[: len(good) // 2]):
        with pytest.raises(BundleError):
            safe_extract(data, tmp_path / "dest")
    assert not (tmp_path / "dest").exists()


def test_safe_extract_refuses_non_empty_destination(tmp_path: Path) -> None:
    dest = write_tree(tmp_path / "dest", {"existing.txt": "keep"})
    with pytest.raises(BundleError, match="not an empty folder"):
        safe_extract(tar_gz(reg("a.py")), dest)
    assert os.listdir(dest) == ["existing.txt"]
