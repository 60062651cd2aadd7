"""Content-addressed code bundles: build, upload, fetch and safely extract.

A deployment's code travels as **one** ``.tar.gz`` object named after the SHA-256 of its
bytes (``bundle-<digest>.tar.gz``). One object instead of one request per file makes
uploads and container starts fast; naming it by content makes uploads idempotent (an
existing key is never re-sent) and lets a container verify what it downloaded.

Determinism is what makes content addressing work: the archive depends only on the
relative paths, bytes and executable bits of the packed files. Entries are sorted, and
mtime, uid/gid, user/group names and the gzip header timestamp are all zeroed; modes are
normalised to ``0o755`` (any execute bit set) or ``0o644``. Only regular files are stored
(empty directories are not preserved).

What is packed (see :func:`iter_project_files`):

* every regular file under the project root, except paths matched by the default ignore
  patterns (:data:`DEFAULT_IGNORE_PATTERNS`, always applied, cannot be negated) or by the
  gitignore-syntax ``.fleetflowignore`` file at the root;
* a symlink to a file is stored as a plain file holding the target's bytes, but only when
  the target is itself a packed file inside the tree. Links that point outside the root,
  at an ignored file (e.g. ``.env``), or at a directory are skipped and never followed, so
  a bundle cannot leak anything outside the project and never contains a link.

Fetching (:func:`fetch_bundle`) verifies the digest, extracts into a private staging
directory with every member checked (:func:`safe_extract`), and publishes it with one
atomic rename, so concurrent fetchers of the same digest all end up with one complete
directory and readers never see a half-extracted tree.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import shutil
import stat
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Callable, Protocol, runtime_checkable

from fleetflow.exceptions import (
    BundleDigestMismatch,
    BundleError,
    BundleTooLarge,
    UnsafeBundleError,
)

__all__ = [
    "DEFAULT_IGNORE_PATTERNS",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_MEMBERS",
    "IGNORE_FILE",
    "Bundle",
    "BundleStore",
    "DirectoryBundleStore",
    "ProgressCallback",
    "build_bundle",
    "bundle_key",
    "fetch_bundle",
    "iter_project_files",
    "safe_extract",
    "upload_bundle",
    "verify_digest",
]

IGNORE_FILE = ".fleetflowignore"
DEFAULT_IGNORE_PATTERNS: tuple[str, ...] = (
    ".git/",
    "__pycache__/",
    ".venv/",
    ".env",
    "*.pyc",
    ".fleetflow/",
)
DEFAULT_MAX_BYTES = 1 << 30  # 1 GiB of file contents
DEFAULT_MAX_MEMBERS = 100_000

# Allowance for tar headers, padding and PAX records on top of file contents when bounding
# the decompressed stream: a 512-byte header plus up to 511 bytes of padding, plus a PAX
# record for long or non-ASCII names, stays under 2 KiB per member.
_TAR_OVERHEAD_PER_MEMBER = 2048
_TAR_OVERHEAD_FIXED = 1 << 20

_KEY_PREFIX = "bundle-"
_KEY_SUFFIX = ".tar.gz"
_DIGEST_RE = re.compile(r"^[0-9a-f]{64}$")
# Reserved inside an extracted bundle; never packed because ".fleetflow/" is always ignored.
_RESERVED_DIR = ".fleetflow"
_MARKER = PurePosixPath(_RESERVED_DIR, "bundle.json")
_COPY_CHUNK = 1 << 20
_Members = list[tuple[tarfile.TarInfo, PurePosixPath]]  # validated members and their safe paths

ProgressCallback = Callable[[int, int], None]
"""Called as ``progress(bytes_done, bytes_total)`` while a bundle is uploaded."""


# --- the bundle and where it is stored ------------------------------------------------------
@dataclass(frozen=True)
class Bundle:
    """A built archive: its SHA-256 ``digest``, the archive ``data``, how many files it
    holds (``file_count``) and the archive's ``size`` in bytes."""

    digest: str
    data: bytes = field(repr=False)
    file_count: int
    size: int

    @property
    def key(self) -> str:
        """The storage key, ``bundle-<digest>.tar.gz``."""
        return bundle_key(self.digest)


@runtime_checkable
class BundleStore(Protocol):
    """Where bundles live, keyed by :func:`bundle_key`.

    Implemented by the ``LocalFileSystem`` and ``S3`` storage blocks and by
    :class:`DirectoryBundleStore`. ``get_bytes`` raises ``FileNotFoundError`` for a missing
    key; ``put_bytes`` must never expose a partially written object under ``key``.
    """

    def exists(self, key: str) -> bool: ...

    def put_bytes(self, key: str, data: bytes) -> None: ...

    def get_bytes(self, key: str) -> bytes: ...


class DirectoryBundleStore:
    """A :class:`BundleStore` backed by a local directory, one file per key.

    Writes go to a temporary file in the target's directory and are moved into place with
    ``os.replace``, so a reader sees either no object or the complete object.
    """

    def __init__(self, root: Path | str):
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"DirectoryBundleStore({str(self.root)!r})"

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def get_bytes(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def put_bytes(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp, 0o600)  # the project's code: owner-only, like the rest of FLEETFLOW_HOME
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _path(self, key: str) -> Path:
        """Map a relative posix key to a path under ``root``; reject keys that could escape."""
        parts = PurePosixPath(key).parts
        if not parts or key.startswith("/") or "\\" in key or ".." in parts:
            raise BundleError(f"invalid bundle store key {key!r}: use a relative path without '..'")
        return self.root.joinpath(*parts)


def bundle_key(digest: str) -> str:
    """The storage key of the bundle with this digest: ``bundle-<digest>.tar.gz``."""
    return f"{_KEY_PREFIX}{_check_digest(digest)}{_KEY_SUFFIX}"


def _check_digest(digest: str) -> str:
    """Accept only a lowercase hex SHA-256; the digest becomes a file and key name."""
    if not isinstance(digest, str) or not _DIGEST_RE.match(digest):
        raise BundleError(f"invalid bundle digest {digest!r}: expected 64 lowercase hex characters")
    return digest


# --- choosing the files ---------------------------------------------------------------------
class _IgnoreRules:
    """The defaults (always applied) plus the project's ``.fleetflowignore``."""

    def __init__(self, user_lines: list[str]):
        import pathspec  # here: a run only fetches bundles, and each module a fork-server template
        # holds costs every forked run at its fork and exit (fork_template._preload)

        self._defaults = pathspec.GitIgnoreSpec.from_lines(DEFAULT_IGNORE_PATTERNS)
        self._user = pathspec.GitIgnoreSpec.from_lines(user_lines)

    @classmethod
    def for_root(cls, root: Path) -> _IgnoreRules:
        ignore_file = root / IGNORE_FILE
        lines = ignore_file.read_text(encoding="utf-8").splitlines() if ignore_file.is_file() else []
        return cls(lines)

    def excludes(self, rel: str, *, is_dir: bool) -> bool:
        """Whether ``rel`` (posix, relative to the root) is left out of the bundle."""
        candidate = rel + "/" if is_dir else rel
        return self._defaults.match_file(candidate) or self._user.match_file(candidate)


def iter_project_files(root: Path | str) -> list[str]:
    """The sorted relative posix paths :func:`build_bundle` would pack (for ``--dry-run``)."""
    return [rel for rel, _ in _collect_files(Path(root))]


def _collect_files(root: Path) -> list[tuple[str, Path]]:
    """``(relative posix path, path to read)`` for every packed file, sorted by path."""
    base = root.resolve()
    if not base.is_dir():
        raise BundleError(f"cannot bundle {root}: not a directory")
    rules = _IgnoreRules.for_root(base)
    regular, links = _walk(base, rules)
    packed = {rel: base / rel for rel in regular}
    for rel, link in links:
        target = _link_target_inside(base, link)
        if target in regular:
            packed[rel] = base / target
    return sorted(packed.items())


def _walk(base: Path, rules: _IgnoreRules) -> tuple[set[str], list[tuple[str, Path]]]:
    """Regular files and file symlinks not ignored, pruning ignored directories.

    Ignored directories are not descended, as in git: a negation pattern cannot re-include
    a file whose parent directory is excluded. Symlinked directories are never descended.
    """
    regular: set[str] = set()
    links: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(base, followlinks=False):
        here = Path(dirpath)
        prefix = here.relative_to(base).as_posix()
        prefix = "" if prefix == "." else prefix + "/"
        dirnames[:] = [d for d in dirnames if not rules.excludes(prefix + d, is_dir=True)]
        for name in filenames:
            rel, path = prefix + name, here / name
            if rules.excludes(rel, is_dir=False):
                continue
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode):
                links.append((rel, path))
            elif stat.S_ISREG(mode):  # sockets, fifos and devices are skipped
                regular.add(rel)
    return regular, links


def _link_target_inside(base: Path, link: Path) -> str | None:
    """The link's final target relative to ``base``, or None if it leaves the tree."""
    try:
        target = link.resolve(strict=True)
        return target.relative_to(base).as_posix()
    except (OSError, RuntimeError, ValueError):  # dangling, loop, or outside the root
        return None


# --- building -------------------------------------------------------------------------------
def build_bundle(
    root: Path | str,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_members: int = DEFAULT_MAX_MEMBERS,
) -> Bundle:
    """Pack the project at ``root`` into one deterministic ``.tar.gz`` held in memory.

    The same tree always yields the same bytes and therefore the same digest, whatever the
    files' timestamps, owners or permission bits (other than executable or not). The
    bounds match :func:`fetch_bundle`'s defaults, so anything built can also be fetched.
    """
    files = _collect_files(Path(root))
    if not files:
        raise BundleError(f"nothing to bundle under {root}: every file is ignored or the folder is empty")
    _check_build_bounds(files, max_bytes, max_members)
    data = _pack(files)
    digest = hashlib.sha256(data).hexdigest()
    return Bundle(digest=digest, data=data, file_count=len(files), size=len(data))


def _check_build_bounds(files: list[tuple[str, Path]], max_bytes: int, max_members: int) -> None:
    """Fail early, naming the biggest files, rather than build an archive nobody can fetch."""
    if len(files) > max_members:
        raise BundleTooLarge(
            f"{len(files)} files exceed the bundle limit of {max_members}; "
            f"exclude generated or data folders in {IGNORE_FILE}"
        )
    sizes = sorted(((path.stat().st_size, rel) for rel, path in files), reverse=True)
    total = sum(size for size, _ in sizes)
    if total > max_bytes:
        biggest = ", ".join(f"{rel} ({size} B)" for size, rel in sizes[:5])
        raise BundleTooLarge(
            f"files total {total} bytes, over the bundle limit of {max_bytes}; "
            f"largest: {biggest}. Exclude data and build outputs in {IGNORE_FILE}"
        )


def _pack(files: list[tuple[str, Path]]) -> bytes:
    """Write ``files`` (already sorted) as a normalised tar inside an mtime-0 gzip stream."""
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0) as gz:
        with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT, encoding="utf-8") as tar:
            for rel, path in files:
                content, mode = _read_file(rel, path)
                tar.addfile(_normalised_info(rel, len(content), mode), io.BytesIO(content))
    return buffer.getvalue()


def _read_file(rel: str, path: Path) -> tuple[bytes, int]:
    try:
        return path.read_bytes(), path.stat().st_mode
    except OSError as exc:
        raise BundleError(f"cannot read {rel} while bundling: {exc}") from exc


def _normalised_info(rel: str, size: int, st_mode: int) -> tarfile.TarInfo:
    """A header carrying only name, size and executable-or-not: nothing machine-specific."""
    info = tarfile.TarInfo(rel)
    info.size = size
    info.type = tarfile.REGTYPE
    info.mode = 0o755 if st_mode & 0o111 else 0o644
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


# --- uploading ------------------------------------------------------------------------------
def upload_bundle(bundle: Bundle, store: BundleStore, progress: ProgressCallback | None = None) -> bool:
    """Store ``bundle`` under its key unless that key already exists.

    Returns True when uploaded, False when skipped (same digest means same bytes). The
    digest is re-checked first: a wrong object under a content key would be trusted by
    every later upload's existence check and rejected by every fetch.
    """
    verify_digest(bundle.data, bundle.digest)
    if store.exists(bundle.key):
        return False
    if progress is not None:
        progress(0, bundle.size)
    store.put_bytes(bundle.key, bundle.data)
    if progress is not None:
        progress(bundle.size, bundle.size)
    return True


def verify_digest(data: bytes, expected: str) -> None:
    """Raise :class:`BundleDigestMismatch` unless ``sha256(data) == expected``."""
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise BundleDigestMismatch(
            f"bundle bytes hash to sha256 {actual}, expected {expected}: the stored object is "
            "corrupt or was replaced; re-apply the deployment to upload it again"
        )


# --- fetching -------------------------------------------------------------------------------
def fetch_bundle(
    digest: str,
    store: BundleStore,
    cache_dir: Path | str,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_members: int = DEFAULT_MAX_MEMBERS,
) -> Path:
    """Return ``cache_dir/<digest>/`` holding the bundle's files, fetching it if needed.

    A complete cached copy is returned without touching the store. Otherwise the object is
    downloaded, its SHA-256 checked against ``digest``, extracted safely into a staging
    directory and renamed into place; if another process wins that race its copy is used.
    """
    final = Path(cache_dir) / _check_digest(digest)
    if _is_complete(final):
        return final
    data = _download(store, digest)
    verify_digest(data, digest)
    return _install(data, digest, final, max_bytes=max_bytes, max_members=max_members)


def _is_complete(directory: Path) -> bool:
    return directory.joinpath(_MARKER).is_file()


def _download(store: BundleStore, digest: str) -> bytes:
    key = bundle_key(digest)
    try:
        return store.get_bytes(key)
    except FileNotFoundError as exc:
        raise BundleError(
            f"bundle {key} is not in {store!r}; re-apply the deployment to upload its code"
        ) from exc


def _install(data: bytes, digest: str, final: Path, *, max_bytes: int, max_members: int) -> Path:
    """Extract into a sibling staging directory, mark it complete, then rename it into place."""
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{digest[:16]}-", suffix=".partial", dir=final.parent))
    try:
        count = safe_extract(data, staging, max_bytes=max_bytes, max_members=max_members)
        _write_marker(staging, digest, count)
        os.chmod(staging, 0o755)  # mkdtemp makes it owner-only; the code is not secret
        _publish(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # gone already after a successful rename
    return final


def _write_marker(directory: Path, digest: str, file_count: int) -> None:
    marker = directory.joinpath(_MARKER)
    marker.parent.mkdir(exist_ok=True)
    marker.write_text(json.dumps({"digest": digest, "file_count": file_count}), encoding="utf-8")


def _publish(staging: Path, final: Path) -> None:
    """Atomically rename ``staging`` to ``final``; losing the race to a complete copy is fine."""
    try:
        os.rename(staging, final)
    except OSError as exc:
        if _is_complete(final):
            return
        raise BundleError(
            f"cannot install bundle at {final}: {exc}. The folder exists but is not a complete "
            "bundle; delete it and retry"
        ) from exc


# --- safe extraction ------------------------------------------------------------------------
def safe_extract(
    data: bytes,
    dest: Path | str,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_members: int = DEFAULT_MAX_MEMBERS,
) -> int:
    """Extract the ``.tar.gz`` in ``data`` into ``dest`` (new or empty); return the file count.

    Every member is checked before anything is written, so a rejected archive writes
    nothing. Only regular files and directories with relative, ``..``-free names are
    accepted; links, devices and fifos raise :class:`UnsafeBundleError`. More than
    ``max_bytes`` of file contents, ``max_members`` members, or a decompressed stream too
    big for those bounds raises :class:`BundleTooLarge`. The checks are done here rather
    than by ``tarfile``'s extraction filters, whose behaviour varies across Python versions.
    """
    dest = Path(dest)
    _check_empty(dest)
    _check_stream_size(data, max_bytes + max_members * _TAR_OVERHEAD_PER_MEMBER + _TAR_OVERHEAD_FIXED)
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            members = _checked_members(tar, max_bytes, max_members)
            dest.mkdir(parents=True, exist_ok=True)
            return _write_members(tar, members, dest.resolve())
    except (tarfile.TarError, EOFError, gzip.BadGzipFile) as exc:
        raise BundleError(f"bundle is not a valid .tar.gz archive: {exc}") from exc


def _check_empty(dest: Path) -> None:
    """An empty destination cannot hold a pre-existing link for a member to write through."""
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise BundleError(f"cannot extract a bundle into {dest}: it exists and is not an empty folder")


def _check_stream_size(data: bytes, limit: int) -> None:
    """Bound the decompressed size before ``tarfile`` parses it (gzip bombs, huge PAX headers)."""
    total = 0
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data), mode="rb") as stream:
            while chunk := stream.read(_COPY_CHUNK):
                total += len(chunk)
                if total > limit:
                    raise BundleTooLarge(
                        f"bundle decompresses to more than {limit} bytes; refusing to extract"
                    )
    except (OSError, EOFError) as exc:  # gzip.BadGzipFile is an OSError
        raise BundleError(f"bundle is not a valid gzip stream: {exc}") from exc


def _checked_members(tar: tarfile.TarFile, max_bytes: int, max_members: int) -> _Members:
    """Validate every member and the totals; return members with their safe relative paths."""
    members: _Members = []
    total = 0
    for count, member in enumerate(tar, start=1):
        if count > max_members:
            raise BundleTooLarge(f"bundle has more than {max_members} members; refusing to extract")
        rel = _check_member(member)
        total += member.size if member.isreg() else 0
        if total > max_bytes:
            raise BundleTooLarge(
                f"bundle holds more than {max_bytes} bytes of files (reached at member "
                f"{member.name!r}); refusing to extract"
            )
        if rel is not None:
            members.append((member, rel))
    return members


def _check_member(member: tarfile.TarInfo) -> PurePosixPath | None:
    """The member's safe relative path (None for a ``.`` root entry), or UnsafeBundleError."""
    name = member.name
    _check_member_type(member)
    if not name or "\x00" in name:
        raise UnsafeBundleError(f"archive member {name!r} has an empty name or a NUL byte")
    if name.startswith(("/", "\\")) or PureWindowsPath(name).drive:
        raise UnsafeBundleError(f"archive member {name!r} has an absolute path")
    parts = [part for part in re.split(r"[\\/]", name) if part not in ("", ".")]
    if ".." in parts:
        raise UnsafeBundleError(f"archive member {name!r} has a '..' component that would escape the folder")
    if not parts:
        if member.isdir():
            return None
        raise UnsafeBundleError(f"archive member {name!r} is not a file name")
    if parts[0] == _RESERVED_DIR:
        raise UnsafeBundleError(f"archive member {name!r} is inside the reserved {_RESERVED_DIR}/ folder")
    return PurePosixPath(*parts)


def _check_member_type(member: tarfile.TarInfo) -> None:
    """Allow regular files and directories only; bundles are never built with anything else."""
    name, target = member.name, member.linkname
    if member.issym():
        raise UnsafeBundleError(f"archive member {name!r} is a symlink (to {target!r}); links are refused")
    if member.islnk():
        raise UnsafeBundleError(f"archive member {name!r} is a hard link (to {target!r}); links are refused")
    if member.ischr() or member.isblk():
        raise UnsafeBundleError(f"archive member {name!r} is a device file")
    if member.isfifo():
        raise UnsafeBundleError(f"archive member {name!r} is a fifo")
    if not (member.isreg() or member.isdir()):
        raise UnsafeBundleError(f"archive member {name!r} has unsupported type {member.type!r}")


def _write_members(tar: tarfile.TarFile, members: _Members, dest: Path) -> int:
    """Write already-validated members with normalised modes; return the number of files."""
    files = 0
    for member, rel in members:
        target = _target_inside(dest, rel)
        try:
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            _write_file(tar, member, target)
        except OSError as exc:
            raise BundleError(f"cannot extract archive member {member.name!r}: {exc}") from exc
        files += 1
    return files


def _target_inside(dest: Path, rel: PurePosixPath) -> Path:
    """Defence in depth: the resolved target must still lie under ``dest``."""
    target = dest.joinpath(*rel.parts)
    if not target.resolve().is_relative_to(dest):
        raise UnsafeBundleError(f"archive member {rel.as_posix()!r} would be written outside {dest}")
    return target


def _write_file(tar: tarfile.TarFile, member: tarfile.TarInfo, target: Path) -> None:
    source = tar.extractfile(member)
    if source is None:  # pragma: no cover - isreg() members always have a file object
        raise BundleError(f"archive member {member.name!r} has no contents")
    with source, open(target, "wb") as out:
        shutil.copyfileobj(source, out, _COPY_CHUNK)
    os.chmod(target, 0o755 if member.mode & 0o111 else 0o644)
