"""S3 storage blocks for code bundles and results, through s3fs.

Two blocks, both Prefect-compatible:

* ``S3(bucket_path="bucket/prefix", aws_access_key_id=..., aws_secret_access_key=...)``, the
  ``prefect.filesystems.S3`` shape (also importable from :mod:`fleetflow.filesystems`);
* ``S3Bucket(bucket_name=..., bucket_folder=..., credentials=AwsCredentials(...))``, the
  ``prefect_aws.S3Bucket`` shape.

``S3`` also takes an optional ``credentials=AwsCredentials(...)`` for everything the two key
fields cannot say (region, profile, session token, ``endpoint_url`` for moto or a VPC
endpoint, botocore retry config). It replaces the key fields rather than merging with them:
setting both is an error, so there is one place to look for what a block will use.

Both implement the bundle store interface (``exists`` / ``put_bytes`` / ``get_bytes``) and the
result storage interface (``write_result`` / ``read_result`` / ``describe``). A bundle goes up
as one PutObject (below 100 MB; s3fs switches to multipart above) and comes down as one
GetObject. Each call is retried with exponential backoff and full jitter on transient errors
only (throttling, 5xx, broken connections), on top of botocore's own per-request retries;
403/404 and other client errors fail at once.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
from http.client import IncompleteRead
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Callable, NoReturn, TypeVar

from pydantic import Field, PrivateAttr, field_validator, model_validator

from ..blocks import Block, SecretStr
from ..exceptions import AwsError, BundleError
from .credentials import AwsCredentials

if TYPE_CHECKING:
    import s3fs

__all__ = ["S3", "S3Bucket", "is_transient_error"]

logger = logging.getLogger(__name__)
T = TypeVar("T")

# Attempts of a whole storage call (each attempt is itself retried by botocore's retry mode).
RETRY_ATTEMPTS = 4
RETRY_BASE_SECONDS = 0.2
RETRY_MAX_WAIT_SECONDS = 5.0

# The codes botocore's "standard" retry mode treats as throttling or transient, plus S3's
# own. https://boto3.amazonaws.com/v1/documentation/api/latest/guide/retries.html and
# https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html (SlowDown, 503).
_TRANSIENT_CODES = frozenset(
    {
        "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
        "TooManyRequestsException", "RequestLimitExceeded", "BandwidthLimitExceeded",
        "RequestThrottled", "SlowDown", "PriorRequestNotComplete", "RequestTimeout",
        "RequestTimeoutException", "InternalError", "ServiceUnavailable",
    }
)


# --- retries ------------------------------------------------------------------------------------
def _client_error(exc: BaseException) -> Any:
    """The botocore ``ClientError`` behind ``exc`` (s3fs re-raises it as an OSError), or None."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        response = getattr(current, "response", None)
        if isinstance(response, dict) and "Error" in response:
            return current
        current = current.__cause__ or current.__context__
    return None


def _error_code(exc: BaseException) -> str:
    error = _client_error(exc)
    return str(error.response["Error"].get("Code", "")) if error is not None else type(exc).__name__


def _status(exc: BaseException) -> int:
    error = _client_error(exc)
    return int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0) if error is not None else 0


@functools.cache
def _transient_exception_types() -> tuple[type[BaseException], ...]:
    """Network-level failures: no usable response, so worth another attempt."""
    import aiohttp
    from botocore.exceptions import ConnectionError as BotoConnectionError
    from botocore.exceptions import HTTPClientError, IncompleteReadError
    from botocore.parsers import ResponseParserError
    from fsspec.exceptions import FSTimeoutError

    return (
        BotoConnectionError,  # EndpointConnectionError, ConnectTimeoutError
        HTTPClientError,  # ReadTimeoutError, ConnectionClosedError, ResponseStreamingError
        IncompleteReadError,
        ResponseParserError,  # a truncated error body
        aiohttp.ClientPayloadError,
        aiohttp.ClientConnectionError,
        FSTimeoutError,
        TimeoutError,
        socket.timeout,
        ConnectionError,  # builtins: reset, refused, aborted
        IncompleteRead,
    )


def is_transient_error(exc: BaseException) -> bool:
    """Whether another attempt may succeed: throttling, 5xx, timeouts or a broken connection.

    Never for 403 (credentials, policy), 404 (missing key or bucket) or other 4xx: retrying
    those only delays the error the user has to fix.
    """
    if _client_error(exc) is not None:
        return _error_code(exc) in _TRANSIENT_CODES or _status(exc) >= 500
    return isinstance(exc, _transient_exception_types())


def _retrying(call: Callable[[], T], description: str) -> T:
    """Run ``call`` with exponential backoff and full jitter on transient errors.

    Full jitter spreads many workers' retries apart instead of having them hit S3 together:
    https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/
    """
    import tenacity

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception(is_transient_error),
        wait=tenacity.wait_random_exponential(multiplier=RETRY_BASE_SECONDS, max=RETRY_MAX_WAIT_SECONDS),
        stop=tenacity.stop_after_attempt(RETRY_ATTEMPTS),
        before_sleep=lambda state: logger.warning(
            "%s failed (%s: %s); retry %d of %d",
            description, type(state.outcome.exception()).__name__, state.outcome.exception(),
            state.attempt_number, RETRY_ATTEMPTS - 1,
        ),
        reraise=True,
    )
    return retrying(call)


# --- errors -------------------------------------------------------------------------------------
_HINTS = {
    "AccessDenied": "check the credentials and that the IAM policy allows this S3 action on the bucket",
    "403": "check the credentials and that the IAM policy allows this S3 action on the bucket",
    "NoSuchBucket": "create the bucket (see terraform/modules/code-bucket) or fix the bucket name",
    "InvalidAccessKeyId": "the access key id is unknown to AWS; check aws_access_key_id",
    "SignatureDoesNotMatch": "the secret access key does not match the access key id",
}


def _raise_aws_error(exc: BaseException, operation: str, url: str) -> NoReturn:
    """Raise an AwsError naming the operation, object and AWS error code, with a hint when we
    have one; its ``__cause__`` is the botocore error (unwrapped from s3fs's OSError)."""
    code = _error_code(exc)
    hint = _HINTS.get(code, "")
    message = f"S3 {operation} on {url} failed: {code}: {exc}" + (f"; {hint}" if hint else "")
    raise AwsError(message, operation=operation, code=code) from (_client_error(exc) or exc)


# --- the shared implementation ------------------------------------------------------------------
class _S3Storage:
    """Behaviour shared by ``S3`` and ``S3Bucket``; they differ only in how they name the
    bucket, the prefix and the credentials."""

    _fs_cache: tuple[str, Any] | None

    def _bucket_and_prefix(self) -> tuple[str, str]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _aws_credentials(self) -> AwsCredentials:  # pragma: no cover - abstract
        raise NotImplementedError

    # ---- the s3fs filesystem ----------------------------------------------------------------
    @property
    def filesystem(self) -> "s3fs.S3FileSystem":
        """This block's own ``S3FileSystem``, rebuilt when its credentials change.

        ``skip_instance_cache`` keeps fsspec from handing us an instance made with other
        credentials; the listings cache is off so ``exists`` always asks S3. s3fs's own retry
        loop is reduced to one attempt because :func:`_retrying` is the policy (otherwise
        the two loops multiply).
        """
        creds = self._aws_credentials()
        key = f"{os.getpid()}:{creds._cache_key('s3fs', 's3')}"
        if self._fs_cache is None or self._fs_cache[0] != key:
            import s3fs

            fs = s3fs.S3FileSystem(skip_instance_cache=True, use_listings_cache=False, **creds.s3fs_kwargs())
            fs.retries = 1
            self._fs_cache = (key, fs)
        return self._fs_cache[1]

    def location(self) -> str:
        """``s3://bucket/prefix``: where this block keeps its objects."""
        bucket, prefix = self._bucket_and_prefix()
        return f"s3://{bucket}/{prefix}".rstrip("/")

    def _object_path(self, key: str) -> str:
        """``bucket/prefix/key`` for s3fs; keys are relative posix paths without ``..``."""
        parts = PurePosixPath(key).parts
        if not key or key.startswith("/") or "\\" in key or ".." in parts:
            raise BundleError(f"invalid S3 object key {key!r}: use a relative path without '..'")
        bucket, prefix = self._bucket_and_prefix()
        return "/".join(p for p in (bucket, prefix, key) if p)

    def _base_path(self, sub: str | None) -> str:
        """``bucket/prefix[/sub]``: the folder a directory copy reads or writes."""
        if sub and sub.strip("/") not in ("", "."):
            return self._object_path(sub.strip("/"))
        return "/".join(p for p in self._bucket_and_prefix() if p)

    def _call(self, operation: str, key_path: str, call: Callable[[], T]) -> T:
        """Run one storage call with retries; turn what is left into a FileNotFoundError or AwsError."""
        url = f"s3://{key_path}"
        try:
            return _retrying(call, f"S3 {operation} {url}")
        except FileNotFoundError as exc:
            if _client_error(exc) is None:  # a local file (put_directory), not an S3 answer
                raise
            if _error_code(exc) == "NoSuchBucket":
                _raise_aws_error(exc, operation, url)
            raise FileNotFoundError(f"{url} does not exist") from exc
        except Exception as exc:
            # S3 answers and network failures become AwsError; local disk errors stay as they are.
            if _client_error(exc) is not None or is_transient_error(exc):
                _raise_aws_error(exc, operation, url)
            raise

    # ---- bundle store interface -------------------------------------------------------------
    def exists(self, key: str) -> bool:
        """Whether ``key`` exists, with one HeadObject.

        Without s3:ListBucket, S3 answers 403 (not 404) for a missing key, which would read
        as "access denied"; the error says so.
        https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadObject.html
        """
        path = self._object_path(key)
        bucket, _, object_key = path.partition("/")
        head = lambda: self.filesystem.call_s3("head_object", Bucket=bucket, Key=object_key)  # noqa: E731
        try:
            self._call("HeadObject", path, head)
        except FileNotFoundError:
            return False
        except AwsError as exc:
            if exc.code in ("AccessDenied", "403"):
                exc.args = (exc.args[0] + " (S3 returns 403 for a missing object without s3:ListBucket)",)
            raise
        return True

    def put_bytes(self, key: str, data: bytes) -> None:
        """Write ``data`` under ``key`` as one PutObject; S3 never shows a partial object."""
        path = self._object_path(key)
        self._call("PutObject", path, lambda: self.filesystem.pipe_file(path, data))

    def get_bytes(self, key: str) -> bytes:
        """Read ``key`` with one GetObject; FileNotFoundError when it does not exist."""
        path = self._object_path(key)
        # max_concurrency=1: otherwise s3fs sends a HeadObject first to size ranged reads.
        return self._call("GetObject", path, lambda: self.filesystem.cat_file(path, max_concurrency=1))

    # Prefect's WritableFileSystem names.
    def read_path(self, path: str) -> bytes:
        """Prefect-compatible alias of :meth:`get_bytes`."""
        return self.get_bytes(path)

    def write_path(self, path: str, content: bytes) -> str:
        """Prefect-compatible: write ``content`` under ``path``; return the full object path."""
        self.put_bytes(path, content)
        return self._object_path(path)

    # ---- result storage interface -----------------------------------------------------------
    def write_result(self, key: str, data: bytes) -> None:
        self.put_bytes(f"results/{key}", data)

    def read_result(self, key: str) -> bytes:
        return self.get_bytes(f"results/{key}")

    def describe(self) -> dict[str, Any]:
        """How a result reference finds this storage again: the saved block's name.

        An unsaved block has no name; its location is recorded instead, which a reader can
        only open with the default AWS credential chain.
        """
        name = getattr(self, "_block_document_name", None)
        if name:
            return {"type": "block", "block": f"{self.get_block_type_slug()}/{name}"}  # type: ignore[attr-defined]
        return {"type": "s3", "url": f"{self.location()}/results"}

    # ---- per-file copies (Prefect compatibility) --------------------------------------------
    def put_directory(
        self, local_path: str | None = None, to_path: str | None = None, ignore_file: str | None = None
    ) -> int:
        """Upload every file under ``local_path`` (default ``.``) to ``to_path`` (relative to
        the block's prefix); return the number of files.

        This is Prefect's per-file upload (one PutObject per file, sent concurrently by
        s3fs). Deployments use one bundle instead, which is much faster for many small files
        (see benchmarks/code_fetch.py). ``ignore_file`` is a gitignore-style file of paths to skip.
        """
        root = Path(local_path or ".").resolve()
        files = _local_files(root, ignore_file)
        if not files:
            return 0
        remote = [self._object_path(_join(to_path, rel)) for rel in files]
        local = [str(root / rel) for rel in files]
        self._call("PutObject", self._base_path(to_path), lambda: self.filesystem.put(local, remote))
        return len(files)

    def get_directory(self, from_path: str | None = None, local_path: str | None = None) -> int:
        """Download every object under ``from_path`` (relative to the prefix) into
        ``local_path`` (default ``.``); return the number of files."""
        base = self._base_path(from_path)
        found = self._call("ListObjectsV2", base, lambda: self.filesystem.find(base))
        root = Path(local_path or ".").resolve()
        pairs = [(path, _local_target(root, base, path)) for path in found]
        if pairs:
            remote, local = [p for p, _ in pairs], [str(t) for _, t in pairs]
            self._call("GetObject", base, lambda: self.filesystem.get(remote, local))
        return len(pairs)


def _join(prefix: str | None, rel: str) -> str:
    prefix = (prefix or "").strip("/")
    return f"{prefix}/{rel}" if prefix and prefix != "." else rel


def _local_files(root: Path, ignore_file: str | None) -> list[str]:
    """Relative posix paths of the regular files under ``root``, minus the ignore file's matches."""
    if not root.is_dir():
        raise BundleError(f"cannot upload {root}: not a directory")
    spec = None
    if ignore_file:
        import pathspec

        spec = pathspec.GitIgnoreSpec.from_lines(Path(ignore_file).read_text(encoding="utf-8").splitlines())
    files = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and not (spec and spec.match_file(rel)):
            files.append(rel)
    return files


def _local_target(root: Path, base: str, remote: str) -> Path:
    """Where ``remote`` lands under ``root``; refuses keys that would climb out of it."""
    rel = PurePosixPath(remote[len(base):].lstrip("/") if remote != base else PurePosixPath(remote).name)
    if rel.is_absolute() or ".." in rel.parts or not rel.parts:
        raise BundleError(f"refusing to download s3://{remote}: its key would land outside {root}")
    return root.joinpath(*rel.parts)


def _strip_scheme(value: str) -> str:
    return value[len("s3://"):] if value.startswith("s3://") else value


# --- the blocks ---------------------------------------------------------------------------------
class S3(_S3Storage, Block):
    """Code bundles and results in an S3 bucket (the ``prefect.filesystems.S3`` block).

    ``aws_access_key_id``/``aws_secret_access_key`` are the Prefect shorthand; for anything
    more (region, profile, endpoint_url, retries) pass ``credentials=AwsCredentials(...)``
    instead. With neither, the default AWS chain is used (e.g. the ECS task role).
    """

    _block_type_slug = "s3"
    _description = "An S3 bucket (and optional prefix) for code bundles and results."

    bucket_path: str = Field(description="Bucket and optional prefix, e.g. 'my-bucket/fleetflow'.")
    aws_access_key_id: SecretStr | None = Field(default=None, description="Access key id (Prefect shorthand).")
    aws_secret_access_key: SecretStr | None = Field(
        default=None, description="Secret access key (Prefect shorthand; encrypted at rest)."
    )
    credentials: AwsCredentials | None = Field(
        default=None,
        description="Full AWS settings (region, profile, endpoint_url, retries); replaces the two key fields.",
    )

    _fs_cache: tuple[str, Any] | None = PrivateAttr(default=None)

    @field_validator("bucket_path")
    @classmethod
    def _check_bucket_path(cls, value: str) -> str:
        value = _strip_scheme(value).strip("/")
        if not value:
            raise ValueError("bucket_path needs a bucket name, e.g. 'my-bucket' or 'my-bucket/prefix'")
        return value

    @model_validator(mode="after")
    def _one_source_of_credentials(self) -> "S3":
        if self.credentials is not None and (self.aws_access_key_id or self.aws_secret_access_key):
            raise ValueError(
                "set either aws_access_key_id/aws_secret_access_key or credentials, not both; "
                "put the keys inside credentials=AwsCredentials(...)"
            )
        return self

    def _bucket_and_prefix(self) -> tuple[str, str]:
        bucket, _, prefix = self.bucket_path.partition("/")
        return bucket, prefix.strip("/")

    def _aws_credentials(self) -> AwsCredentials:
        if self.credentials is not None:
            return self.credentials
        return AwsCredentials(
            aws_access_key_id=self.aws_access_key_id.get_secret_value() if self.aws_access_key_id else None,
            aws_secret_access_key=self.aws_secret_access_key,
        )


class S3Bucket(_S3Storage, Block):
    """Code bundles and results in an S3 bucket (the ``prefect_aws.S3Bucket`` block)."""

    _block_type_slug = "s3-bucket"
    _description = "An S3 bucket with its own AWS credentials, for code bundles and results."

    bucket_name: str = Field(description="Name of the bucket, e.g. 'my-company-fleetflow-code'.")
    bucket_folder: str = Field(default="", description="Prefix inside the bucket under which objects are kept.")
    credentials: AwsCredentials = Field(
        default_factory=AwsCredentials, description="AWS credentials and client settings used for this bucket."
    )

    _fs_cache: tuple[str, Any] | None = PrivateAttr(default=None)

    @field_validator("bucket_name")
    @classmethod
    def _check_bucket_name(cls, value: str) -> str:
        value = _strip_scheme(value).strip("/")
        if not value or "/" in value:
            raise ValueError("bucket_name is a bare bucket name; put any prefix in bucket_folder")
        return value

    def _bucket_and_prefix(self) -> tuple[str, str]:
        return self.bucket_name, self.bucket_folder.strip("/")

    def _aws_credentials(self) -> AwsCredentials:
        return self.credentials


def _result_storage_from_url(descriptor: dict[str, Any]) -> S3:
    """An unsaved S3 block recorded by location: opened with the default AWS credential chain."""
    return S3(bucket_path=descriptor["url"].removeprefix("s3://").removesuffix("/results"))


def _register_result_storage() -> None:
    from ..results import register_result_storage

    register_result_storage("s3", _result_storage_from_url)


_register_result_storage()
