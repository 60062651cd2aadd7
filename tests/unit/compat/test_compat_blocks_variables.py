"""Area 6: system blocks (Secret, JSON, String, DateTime), custom nested blocks, SecretDict,
variables (API and CLI)."""

from __future__ import annotations

import datetime as dt

import pytest

from fleetflow import flow
from fleetflow.blocks.core import Block
from fleetflow.blocks.fields import SecretDict
from fleetflow.blocks.system import JSON, DateTime, Secret, String
from fleetflow.blocks import SecretStr
from fleetflow.exceptions import ConfigurationError, ObjectAlreadyExists
from fleetflow.orchestrator import Orchestrator
from fleetflow import variables
from fleetflow.variables import Variable


def _at_rest(url: str, block_type: str, name: str) -> dict:
    """The block's data as the database holds it (the client hands secrets out opened)."""
    store = Orchestrator.create(url)
    try:
        return store.read_block_document(block_type, name).data
    finally:
        store.dispose()


def test_system_blocks_round_trip_and_secret_is_encrypted_and_masked(temp_store, temp_store_url):
    Secret(value="s3cr3t-token").save("api-token")
    JSON(value={"a": [1, 2]}).save("cfg")
    String(value="hello").save("greeting")
    DateTime(value=dt.datetime(2024, 5, 1, 12, tzinfo=dt.timezone.utc)).save("launch")

    loaded = Secret.load("api-token")
    assert loaded.get() == "s3cr3t-token"
    assert "s3cr3t" not in repr(loaded) and "s3cr3t" not in str(loaded.masked_dict())
    stored = _at_rest(temp_store_url, "secret", "api-token")
    assert "s3cr3t" not in str(stored)
    assert JSON.load("cfg").value == {"a": [1, 2]}
    assert String.load("greeting").value == "hello"
    assert DateTime.load("launch").value == dt.datetime(2024, 5, 1, 12, tzinfo=dt.timezone.utc)
    assert Block.load("secret/api-token").get() == "s3cr3t-token"


class ApiCredentials(Block):
    token: SecretStr
    headers: SecretDict = SecretDict({})


class Service(Block):
    url: str
    credentials: ApiCredentials


def test_custom_blocks_nest_other_blocks_with_secrets(temp_store, temp_store_url):
    Service(url="https://x", credentials=ApiCredentials(token="tok-1", headers={"X-Key": "k-2"})).save("svc")
    svc = Service.load("svc")
    assert svc.credentials.token.get_secret_value() == "tok-1"
    assert svc.credentials.headers.get_secret_value() == {"X-Key": "k-2"}
    raw = str(_at_rest(temp_store_url, "service", "svc"))
    assert "tok-1" not in raw and "k-2" not in raw
    assert "k-2" not in repr(svc) and svc.masked_dict()["credentials"]["headers"] == "********"


def test_variables_get_set(temp_store):
    assert variables.get("region") is None
    assert variables.get("region", default="eu-west-1") == "eu-west-1"
    Variable.set("region", "us-east-1", tags=["infra"])
    with pytest.raises(ObjectAlreadyExists, match="overwrite"):
        Variable.set("region", "x")
    Variable.set("region", "ap-south-1", overwrite=True)

    @flow
    def uses():
        return variables.get("region"), Variable.get("region").value, Variable.get("nope", default="d")

    assert uses() == ("ap-south-1", "ap-south-1", "d")
    with pytest.raises(ConfigurationError, match="lowercase"):
        Variable.set("Bad-Name", "v")
    with pytest.raises(ConfigurationError, match="5000"):
        Variable.set("big", "x" * 5001)


def test_variable_cli(temp_store):
    from compat_cli import invoke

    assert invoke("variable", "set", "color", "blue", "--tag", "ui").exit_code == 0
    assert invoke("variable", "get", "color").stdout.strip() == "blue"
    listing = invoke("variable", "ls")
    assert "color" in listing.stdout and "blue" in listing.stdout
    again = invoke("variable", "set", "color", "red")
    assert again.exit_code == 1 and "overwrite" in again.stderr
    assert invoke("variable", "set", "color", "red", "--overwrite").exit_code == 0
    assert variables.get("color") == "red"
    assert invoke("variable", "delete", "color").exit_code == 0
    missing = invoke("variable", "get", "color")
    assert missing.exit_code == 1 and "variable set color" in missing.stderr
