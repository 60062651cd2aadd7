"""Blocks: save/load, overwrite, unknown names, secrets at rest, schema versions."""

from __future__ import annotations

import os
import stat
from typing import ClassVar

import pytest
from pydantic import Field

from fleetflow.blocks import Block, SecretStr, block_types, get_block_class
from fleetflow.orchestrator import Orchestrator
from fleetflow.exceptions import BlockAlreadyExists, BlockNotFound, BlockValidationError, InvalidNameError


class Warehouse(Block):
    _block_type_slug = "test-warehouse"
    host: str = Field(description="Host name.")
    port: int = Field(default=5432, description="Port.")
    password: SecretStr | None = Field(default=None, description="Password.")


def test_save_load_round_trip_and_overwrite(temp_store):
    Warehouse(host="db", password="s3cret").save("main")
    loaded = Warehouse.load("main")
    assert loaded.host == "db" and loaded.password.get_secret_value() == "s3cret"
    assert Block.load("test-warehouse/main").host == "db"
    with pytest.raises(BlockAlreadyExists, match="overwrite=True"):
        Warehouse(host="other").save("main")
    Warehouse(host="other").save("main", overwrite=True)
    assert Warehouse.load("main").host == "other"
    Warehouse.delete("main")
    with pytest.raises(BlockNotFound):
        Warehouse.load("main")


def test_unknown_name_lists_existing_ones(temp_store):
    Warehouse(host="a").save("alpha")
    Warehouse(host="b").save("beta")
    with pytest.raises(BlockNotFound) as err:
        Warehouse.load("gamma")
    assert "alpha" in str(err.value) and "beta" in str(err.value)


def test_secret_is_encrypted_at_rest_and_masked(temp_store, temp_store_url, capsys):
    block = Warehouse(host="db", password="hunter2-plain")
    block.save("sec")
    at_rest = Orchestrator.create(temp_store_url)
    try:
        raw = at_rest.read_block_document("test-warehouse", "sec").data
    finally:
        at_rest.dispose()
    assert "hunter2-plain" not in str(raw) and "$fleetflow-secret" in str(raw)
    assert Warehouse.load("sec").password.get_secret_value() == "hunter2-plain"
    assert "hunter2-plain" not in repr(block) and "********" in repr(block)
    assert block.masked_dict()["password"] == "********"
    print(block)
    assert "hunter2-plain" not in capsys.readouterr().out
    key = os.path.join(os.environ["FLEETFLOW_HOME"], "encryption.key")
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600


def test_wrong_key_gives_a_clear_error(temp_store, monkeypatch):
    from cryptography.fernet import Fernet

    from fleetflow.exceptions import BlockError
    from fleetflow.settings import reset_settings

    Warehouse(host="db", password="x").save("k")
    monkeypatch.setenv("FLEETFLOW_ENCRYPTION_KEY", Fernet.generate_key().decode())
    reset_settings()
    with pytest.raises(BlockError, match="FLEETFLOW_ENCRYPTION_KEY"):
        Warehouse.load("k")


def test_unknown_fields_are_errors(temp_store):
    with pytest.raises(BlockValidationError, match="hots"):
        Warehouse(hots="typo")
    temp_store.save_block_document("test-warehouse", "legacy", {"host": "h", "extra_field": 1})
    with pytest.raises(BlockValidationError, match="extra_field"):
        Warehouse.load("legacy")


def test_block_saved_by_older_schema_version_still_loads(temp_store):
    temp_store.save_block_document("test-versioned", "old", {"hostname": "legacy-host"}, schema_version=1)

    class Versioned(Block):
        _block_type_slug = "test-versioned"
        _schema_version: ClassVar[int] = 2
        host: str = Field(description="Renamed from 'hostname' in version 2.")

        @classmethod
        def _migrate_data(cls, data, from_version):
            if from_version < 2:
                data = dict(data)
                data["host"] = data.pop("hostname")
            return data

    assert Versioned.load("old").host == "legacy-host"
    Versioned(host="new").save("new")
    assert temp_store.read_block_document("test-versioned", "new").schema_version == 2


def test_registry_and_names(temp_store):
    assert get_block_class("test-warehouse") is Warehouse
    assert {"process", "local-file-system", "ecs-task", "s3", "aws-credentials"} <= set(block_types())
    with pytest.raises(BlockNotFound, match="known types"):
        get_block_class("nope")
    with pytest.raises(InvalidNameError):
        Warehouse(host="x").save("Bad Name!")
