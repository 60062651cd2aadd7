"""AWS credentials and client settings, honoured by every AWS client fleetflow makes.

``AwsCredentials`` is the prefect-aws block of the same name (same slug, same field names), so
a Prefect user keeps their configuration. One block drives three client stacks:

* boto3, for the synchronous user-facing helpers (:meth:`AwsCredentials.get_client`);
* aiobotocore, for the worker's concurrent calls (:meth:`AwsCredentials.get_async_client`);
* s3fs, for S3 storage (:meth:`AwsCredentials.s3fs_kwargs`).

Every field is optional. An unset field is *not passed* to the client, so botocore's default
chain fills it in: environment variables, the shared config/credentials files, then the ECS
task role or EC2 instance profile. See
https://boto3.amazonaws.com/v1/documentation/api/latest/guide/credentials.html
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import re
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Mapping
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..blocks import Block, SecretStr
from ..exceptions import ConfigurationError

if TYPE_CHECKING:  # imports for annotations only: boto3/aiobotocore load lazily
    import boto3

__all__ = ["AwsClientParameters", "AwsCredentials", "check_key_pair", "clear_client_cache"]

_S3FS_NAMES = (("aws_access_key_id", "key"), ("aws_secret_access_key", "secret"), ("aws_session_token", "token"))
_CLIENT_CACHE_SIZE = 64
_client_cache: "OrderedDict[str, Any]" = OrderedDict()
# boto3 sessions are not thread-safe, so clients are created under this lock; the clients
# themselves are. See "Multithreading or multiprocessing with clients" in
# https://boto3.amazonaws.com/v1/documentation/api/latest/guide/clients.html
_client_cache_lock = threading.Lock()


class AwsClientParameters(BaseModel):
    """Client-level settings: where requests go and how they are retried (prefect-aws names)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    endpoint_url: str | None = Field(
        default=None,
        description="Send requests here instead of AWS (e.g. a moto server or a VPC endpoint), "
        "as a full URL such as 'http://127.0.0.1:5000'.",
    )
    verify: bool | str | None = Field(
        default=None,
        description="TLS certificate verification: False to disable, or the path of a CA bundle. "
        "Unset uses botocore's default (verify with the system bundle).",
    )
    use_ssl: bool = Field(default=True, description="Use HTTPS when no endpoint_url is given.")
    api_version: str | None = Field(default=None, description="Pin a service API version; unset uses the latest.")
    config: dict[str, Any] = Field(
        default_factory=dict,
        description="Keyword arguments of botocore.config.Config, e.g. "
        "{'retries': {'mode': 'adaptive', 'max_attempts': 10}, 'connect_timeout': 5}.",
    )

    @field_validator("endpoint_url")
    @classmethod
    def _check_endpoint(cls, value: str | None) -> str | None:
        # botocore only says "Invalid endpoint" at the first request; say what is wrong now.
        if value is not None and (urlsplit(value).scheme not in ("http", "https") or not urlsplit(value).netloc):
            raise ValueError(f"endpoint_url {value!r} must be a full http(s) URL, e.g. 'http://127.0.0.1:5000'")
        return value

    @field_validator("config")
    @classmethod
    def _check_config(cls, value: dict[str, Any]) -> dict[str, Any]:
        """Build the botocore Config once so a typo fails when the block is made, not at launch."""
        if value:
            from botocore.config import Config

            try:
                Config(**copy.deepcopy(value))
            except TypeError as exc:
                raise ValueError(f"not a botocore Config argument: {exc}") from None
        return value

    def get_params_override(self) -> dict[str, Any]:
        """Keyword arguments for ``boto3.Session.client`` (prefect-aws name); unset values left out."""
        params = self._common_params()
        if self.config:
            from botocore.config import Config

            params["config"] = Config(**self.botocore_config_kwargs())
        return params

    def botocore_config_kwargs(self) -> dict[str, Any]:
        """A deep copy of ``config``: botocore's Config rewrites the ``retries`` dict it is
        given (``max_attempts`` -> ``total_max_attempts``), which must not change the block."""
        return copy.deepcopy(self.config)

    def _common_params(self) -> dict[str, Any]:
        """The settings every client stack takes under the same names."""
        params: dict[str, Any] = {"use_ssl": self.use_ssl}
        for name in ("endpoint_url", "verify", "api_version"):
            value = getattr(self, name)
            if value is not None:
                params[name] = value
        return params


class AwsCredentials(Block):
    """Credentials and client settings for AWS (prefect-aws compatible).

    Leave a field unset to let the default AWS chain provide it (environment, profile, ECS
    task role). Secret fields are encrypted when saved and print as ``********``.
    """

    _block_type_slug = "aws-credentials"
    _description = "AWS credentials and client settings (region, endpoint, retries)."

    aws_access_key_id: str | None = Field(default=None, description="Access key id; unset uses the default chain.")
    aws_secret_access_key: SecretStr | None = Field(default=None, description="Secret access key (encrypted at rest).")
    aws_session_token: SecretStr | None = Field(
        default=None, description="Session token of temporary credentials (encrypted at rest)."
    )
    profile_name: str | None = Field(default=None, description="Profile in ~/.aws/config to use.")
    region_name: str | None = Field(
        default=None, description="AWS region, e.g. 'eu-west-1'; unset uses AWS_DEFAULT_REGION or the profile's."
    )
    aws_client_parameters: AwsClientParameters = Field(
        default_factory=AwsClientParameters,
        description="Endpoint, TLS and botocore Config settings applied to every client.",
    )

    # ---- boto3 --------------------------------------------------------------------------------
    def get_boto3_session(self) -> "boto3.Session":
        """A new boto3 session from the set fields (unset ones fall through to the default chain)."""
        import boto3

        return boto3.Session(**self._session_kwargs())

    def get_client(self, service: str) -> Any:
        """A boto3 client for ``service``, shared by every block with the same content.

        Clients are thread-safe and costly to build (~50 ms: service model, endpoint
        resolution), so one per (content, service) is cached. The key also covers the
        ``AWS_*`` environment, so a changed default chain is not served a stale client.
        """
        key = self._cache_key("boto3", service)
        with _client_cache_lock:
            client = _client_cache.get(key)
            if client is None:
                client = self.get_boto3_session().client(service, **self.aws_client_parameters.get_params_override())
                _client_cache[key] = client
                if len(_client_cache) > _CLIENT_CACHE_SIZE:
                    _client_cache.popitem(last=False)
            _client_cache.move_to_end(key)
            return client

    def get_s3_client(self) -> Any:
        """The boto3 S3 client (prefect-aws name)."""
        return self.get_client("s3")

    # ---- aiobotocore --------------------------------------------------------------------------
    def get_async_client(self, service: str, *, config: Mapping[str, Any] | None = None) -> Any:
        """An aiobotocore client context manager: ``async with creds.get_async_client("ecs") as ecs:``.

        Not cached: an aiobotocore client belongs to the event loop it was entered on, so the
        caller owns its lifetime (enter it once per loop and reuse it for many calls).
        ``config`` (botocore Config arguments) is laid over the block's ``config``; the ECS
        launcher uses it to turn botocore's retries off and retry with its own policy.
        """
        from aiobotocore.config import AioConfig
        from aiobotocore.session import AioSession

        session = AioSession(profile=self.profile_name) if self.profile_name else AioSession()
        kwargs = {**self._credential_kwargs(), **self.aws_client_parameters._common_params()}
        if self.region_name:
            kwargs["region_name"] = self.region_name
        config_kwargs = {**self.aws_client_parameters.botocore_config_kwargs(), **(config or {})}
        if config_kwargs:
            kwargs["config"] = AioConfig(**config_kwargs)
        return session.create_client(service, **kwargs)

    # ---- s3fs ---------------------------------------------------------------------------------
    def s3fs_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``s3fs.S3FileSystem`` carrying every set field.

        s3fs names things its own way: ``key``/``secret``/``token``/``profile`` at the top level,
        client settings in ``client_kwargs`` and botocore Config arguments in ``config_kwargs``.
        See https://s3fs.readthedocs.io/en/latest/api.html#s3fs.core.S3FileSystem
        """
        kwargs: dict[str, Any] = {}
        creds = self._credential_kwargs()
        for ours, theirs in _S3FS_NAMES:
            if ours in creds:
                kwargs[theirs] = creds[ours]
        if self.profile_name:
            kwargs["profile"] = self.profile_name
        client_kwargs = self.aws_client_parameters._common_params()
        kwargs["use_ssl"] = client_kwargs.pop("use_ssl")
        if self.region_name:
            client_kwargs["region_name"] = self.region_name
        kwargs["client_kwargs"] = client_kwargs
        if self.aws_client_parameters.config:
            kwargs["config_kwargs"] = self.aws_client_parameters.botocore_config_kwargs()
        return kwargs

    # ---- helpers ------------------------------------------------------------------------------
    def _credential_kwargs(self) -> dict[str, str]:
        """Key, secret and token under boto3's names, only those that are set."""
        check_key_pair(self.aws_access_key_id, self.aws_secret_access_key, self.aws_session_token)
        values = {
            "aws_access_key_id": self.aws_access_key_id,
            "aws_secret_access_key": _reveal(self.aws_secret_access_key),
            "aws_session_token": _reveal(self.aws_session_token),
        }
        return {name: value for name, value in values.items() if value}

    def _session_kwargs(self) -> dict[str, str]:
        kwargs = self._credential_kwargs()
        if self.profile_name:
            kwargs["profile_name"] = self.profile_name
        if self.region_name:
            kwargs["region_name"] = self.region_name
        return kwargs

    def _cache_key(self, stack: str, service: str) -> str:
        """A digest of everything that shapes a client, so secrets never sit in a dict key."""
        content = {
            "fields": {**self._session_kwargs(), "params": self.aws_client_parameters.model_dump(mode="json")},
            "env": {k: v for k, v in os.environ.items() if k.startswith("AWS_")},
            "stack": stack,
            "service": service,
        }
        return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()


class _RedactSessionTokens(logging.Filter):
    """Mask session tokens in botocore's DEBUG output.

    With DEBUG logging on, botocore prints the canonical request it signs, which carries
    the ``x-amz-security-token`` header in clear; a shipped run log must not. (The secret key
    itself never appears: only the signature derived from it.)
    """

    _TOKEN = re.compile(r"(x-amz-security-token['\"]?\s*[:=]\s*b?['\"]?)[^\s'\",}&]+", re.IGNORECASE)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "security-token" in message.lower():
            record.msg, record.args = self._TOKEN.sub(r"\1********", message), ()
        return True


def _install_log_redaction() -> None:
    redactor = _RedactSessionTokens()
    for name in ("botocore.auth", "botocore.endpoint", "aiobotocore.endpoint"):
        logging.getLogger(name).addFilter(redactor)


_install_log_redaction()


def check_key_pair(key_id: Any, secret: Any, token: Any = None) -> None:
    """Explicit keys come as a pair (plus an optional token), or not at all.

    Half a pair would not fall back to the default chain: boto3 builds credentials from what
    it is given and every request then fails to sign, far from the cause. Checked when a
    client is made rather than by a validator, so the two fields can be assigned one at a
    time (``validate_assignment`` re-runs model validators on every assignment).
    """
    if bool(key_id) != bool(secret):
        missing = "aws_secret_access_key" if key_id else "aws_access_key_id"
        raise ConfigurationError(
            f"{missing} is missing: set aws_access_key_id and aws_secret_access_key together, "
            "or neither to use the default AWS chain (environment, profile, task role)",
            field=missing,
        )
    if token and not key_id:
        raise ConfigurationError(
            "aws_session_token needs aws_access_key_id and aws_secret_access_key", field="aws_session_token"
        )


def _reveal(secret: SecretStr | None) -> str | None:
    return secret.get_secret_value() if secret is not None else None


def clear_client_cache() -> None:
    """Forget every cached boto3 client (tests, or after rotating credentials in place)."""
    with _client_cache_lock:
        _client_cache.clear()
