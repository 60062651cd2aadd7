"""AwsCredentials against a real moto server: every client stack honours every setting."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from pathlib import Path
from typing import Any

import pytest

from aws_server import credentials_for
from fleetflow.aws.credentials import AwsClientParameters, AwsCredentials
from fleetflow.blocks import MASK
from fleetflow.exceptions import BlockValidationError, ConfigurationError
from fleetflow.orchestrator import Orchestrator

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
TOKEN = "FwoGZXIvYXdzEXAMPLE-session-token"
STACKS = ["boto3", "aiobotocore", "s3fs"]


# --- helpers: one way to reach each client stack --------------------------------------------------
def _s3fs(creds: AwsCredentials) -> Any:
    import s3fs

    return s3fs.S3FileSystem(skip_instance_cache=True, **creds.s3fs_kwargs())


def client_facts(creds: AwsCredentials, stack: str) -> dict[str, Any]:
    """Endpoint, region, retry config and access key of an S3 client built by ``stack``."""
    if stack == "boto3":
        return _facts(creds.get_client("s3"), creds.get_client("s3")._request_signer._credentials)
    if stack == "aiobotocore":

        async def read() -> dict[str, Any]:
            async with creds.get_async_client("s3") as s3:
                frozen = await s3._request_signer._credentials.get_frozen_credentials()
                return _facts(s3, frozen)

        return asyncio.run(read())
    fs = _s3fs(creds)
    return _facts(fs.s3, fs.s3._request_signer._credentials)


def _facts(client: Any, credentials: Any) -> dict[str, Any]:
    return {
        "endpoint_url": client.meta.endpoint_url,
        "region": client.meta.region_name,
        "retries": client.meta.config.retries,
        "access_key": credentials.access_key,
        "secret_key": credentials.secret_key,
        "token": credentials.token,
    }


def list_buckets(creds: AwsCredentials, stack: str) -> list[str]:
    """Make one real request through ``stack``."""
    if stack == "boto3":
        return [b["Name"] for b in creds.get_client("s3").list_buckets()["Buckets"]]
    if stack == "aiobotocore":

        async def run() -> list[str]:
            async with creds.get_async_client("s3") as s3:
                return [b["Name"] for b in (await s3.list_buckets())["Buckets"]]

        return asyncio.run(run())
    return _s3fs(creds).ls("")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- every stack honours every setting ----------------------------------------------------------
@pytest.mark.parametrize("stack", STACKS)
def test_endpoint_region_and_retry_config_land_in_each_client(aws_env, stack):
    creds = credentials_for(
        aws_env.url,
        region_name="eu-west-1",
        aws_client_parameters={"config": {"retries": {"mode": "adaptive", "max_attempts": 7}}},
    )
    facts = client_facts(creds, stack)
    assert facts["endpoint_url"] == aws_env.url
    assert facts["region"] == "eu-west-1"
    # botocore stores the legacy "max_attempts" (retries) as total attempts (retries + 1).
    assert facts["retries"] == {"mode": "adaptive", "total_max_attempts": 8}


@pytest.mark.parametrize("stack", STACKS)
def test_requests_reach_the_configured_endpoint(aws_env, stack):
    creds = credentials_for(aws_env.url)
    creds.get_client("s3").create_bucket(Bucket="reached-through-endpoint")
    assert "reached-through-endpoint" in list_buckets(creds, stack)


@pytest.mark.parametrize("stack", STACKS)
def test_wrong_endpoint_fails_with_a_connect_error(aws_env, stack):
    creds = credentials_for(
        f"http://127.0.0.1:{closed_port()}",
        aws_client_parameters={"config": {"retries": {"total_max_attempts": 1}, "connect_timeout": 1}},
    )
    with pytest.raises(Exception) as caught:
        list_buckets(creds, stack)
    assert "connect" in f"{type(caught.value).__name__} {caught.value}".lower()


@pytest.mark.parametrize("stack", STACKS)
def test_explicit_keys_and_session_token_are_used(aws_env, stack):
    creds = credentials_for(
        aws_env.url, aws_access_key_id="AKIAEXPLICIT", aws_secret_access_key=SECRET, aws_session_token=TOKEN
    )
    facts = client_facts(creds, stack)
    assert (facts["access_key"], facts["secret_key"], facts["token"]) == ("AKIAEXPLICIT", SECRET, TOKEN)


@pytest.mark.parametrize("stack", STACKS)
def test_unset_fields_fall_through_to_the_environment(aws_env, monkeypatch, stack):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAFROMENV")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-southeast-2")
    creds = AwsCredentials(aws_client_parameters=AwsClientParameters(endpoint_url=aws_env.url))
    facts = client_facts(creds, stack)
    assert (facts["access_key"], facts["region"]) == ("AKIAFROMENV", "ap-southeast-2")
    assert list_buckets(creds, stack) == []  # the env credentials sign a real request


def test_unset_fields_are_not_passed_at_all(aws_env):
    """None would override the default chain in some stacks; leaving keys out never does."""
    kwargs = AwsCredentials().s3fs_kwargs()
    assert kwargs == {"use_ssl": True, "client_kwargs": {}}
    assert AwsClientParameters().get_params_override() == {"use_ssl": True}


@pytest.mark.parametrize("stack", STACKS)
def test_profile_is_honoured(aws_env, monkeypatch, tmp_path: Path, stack):
    (tmp_path / "config").write_text("[profile dev]\nregion = sa-east-1\n")
    (tmp_path / "credentials").write_text("[dev]\naws_access_key_id = AKIAPROFILE\naws_secret_access_key = s\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    creds = AwsCredentials(profile_name="dev", aws_client_parameters={"endpoint_url": aws_env.url})
    facts = client_facts(creds, stack)
    assert (facts["access_key"], facts["region"]) == ("AKIAPROFILE", "sa-east-1")


def test_boto3_session_carries_the_fields(aws_env):
    creds = credentials_for(
        aws_env.url, region_name="eu-central-1", aws_access_key_id="AKIASESSION", aws_secret_access_key="s"
    )
    session = creds.get_boto3_session()
    assert session.region_name == "eu-central-1"
    assert session.get_credentials().access_key == "AKIASESSION"


def test_using_a_client_does_not_change_the_block(aws_env):
    """botocore's Config rewrites the retries dict it is given; the block's copy must survive."""
    config = {"retries": {"mode": "standard", "max_attempts": 3}}
    creds = credentials_for(aws_env.url, aws_client_parameters={"config": config})
    before = creds.model_dump(mode="json")
    creds.get_client("s3")
    _s3fs(creds).s3
    asyncio.run(_enter_and_leave(creds))
    assert creds.model_dump(mode="json") == before


async def _enter_and_leave(creds: AwsCredentials) -> None:
    async with creds.get_async_client("s3"):
        pass


# --- client caching ----------------------------------------------------------------------------
def test_same_content_shares_one_client(aws_env):
    first, second = credentials_for(aws_env.url), credentials_for(aws_env.url)
    assert first is not second
    assert first.get_client("s3") is second.get_client("s3")
    assert first.get_client("s3") is not first.get_client("ecs")


def test_different_content_gets_different_clients(aws_env):
    base = credentials_for(aws_env.url)
    assert base.get_client("s3") is not credentials_for(aws_env.url, region_name="eu-west-1").get_client("s3")
    other_keys = credentials_for(aws_env.url, aws_access_key_id="AKIAOTHER", aws_secret_access_key="other")
    assert base.get_client("s3") is not other_keys.get_client("s3")


def test_changed_environment_is_not_served_a_stale_client(aws_env, monkeypatch):
    creds = credentials_for(aws_env.url)
    before = creds.get_client("s3")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAROTATED")
    after = creds.get_client("s3")
    assert after is not before
    assert after._request_signer._credentials.access_key == "AKIAROTATED"


def test_concurrent_first_use_builds_one_client(aws_env):
    creds = credentials_for(aws_env.url, region_name="us-west-2")
    barrier, clients = threading.Barrier(8), []

    def worker() -> None:
        barrier.wait()
        clients.append(creds.get_client("s3"))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(clients) == 8 and len({id(c) for c in clients}) == 1


# --- validation ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "fields",
    [
        {"aws_acess_key_id": "typo"},
        {"aws_client_parameters": {"endpoint_url": "127.0.0.1:5000"}},
        {"aws_client_parameters": {"config": {"retry": {"mode": "standard"}}}},
        {"aws_client_parameters": {"endpointurl": "http://x"}},
    ],
)
def test_invalid_fields_are_rejected_when_the_block_is_made(fields):
    with pytest.raises(BlockValidationError):
        AwsCredentials(**fields)


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize(
    ("fields", "culprit"),
    [
        ({"aws_secret_access_key": "half a pair"}, "aws_access_key_id"),
        ({"aws_access_key_id": "AKIAHALF"}, "aws_secret_access_key"),
        ({"aws_session_token": "token without keys"}, "aws_session_token"),
    ],
)
def test_half_a_key_pair_is_refused_before_any_request(aws_env, stack, fields, culprit):
    """boto3 would build unusable credentials from half a pair and fail at signing, far from the cause."""
    creds = credentials_for(aws_env.url, **fields)
    with pytest.raises(ConfigurationError) as caught:
        list_buckets(creds, stack)
    assert caught.value.field == culprit


def test_key_pair_can_be_assigned_one_field_at_a_time(aws_env):
    creds = credentials_for(aws_env.url)
    creds.aws_access_key_id = "AKIASTEP"
    creds.aws_secret_access_key = "step"
    assert creds.get_client("s3").list_buckets()["Buckets"] == []


# --- secrets ------------------------------------------------------------------------------------
def test_secrets_are_masked_in_repr_str_and_masked_dict():
    creds = AwsCredentials(aws_access_key_id="AKIAVISIBLE", aws_secret_access_key=SECRET, aws_session_token=TOKEN)
    for text in (repr(creds), str(creds), json.dumps(creds.masked_dict())):
        assert SECRET not in text and TOKEN not in text
    masked = creds.masked_dict()
    assert masked["aws_secret_access_key"] == MASK and masked["aws_session_token"] == MASK
    assert masked["aws_access_key_id"] == "AKIAVISIBLE"


def test_secrets_stay_out_of_logs(aws_env, caplog):
    creds = credentials_for(
        aws_env.url, aws_access_key_id="AKIALOGS", aws_secret_access_key=SECRET, aws_session_token=TOKEN
    )
    with caplog.at_level("DEBUG"):
        creds.get_client("s3").list_buckets()
        list_buckets(creds, "s3fs")
    assert SECRET not in caplog.text and TOKEN not in caplog.text


def test_saved_secrets_are_encrypted_and_load_back(temp_store, temp_store_url, aws_env):
    creds = credentials_for(
        aws_env.url, aws_access_key_id="AKIASAVED", aws_secret_access_key=SECRET, aws_session_token=TOKEN
    )
    creds.save("prod", client=temp_store)

    at_rest = Orchestrator.create(temp_store_url)  # what the database holds
    try:
        raw = json.dumps(at_rest.read_block_document("aws-credentials", "prod").data)
    finally:
        at_rest.dispose()
    assert SECRET not in raw and TOKEN not in raw
    assert "AKIASAVED" in raw  # the key id is not a secret (prefect-aws keeps it plain too)

    loaded = AwsCredentials.load("prod", client=temp_store)
    assert loaded.aws_secret_access_key.get_secret_value() == SECRET
    assert loaded.aws_session_token.get_secret_value() == TOKEN
    assert loaded.aws_client_parameters.endpoint_url == aws_env.url
    assert loaded.get_client("s3").list_buckets()["Buckets"] == []
