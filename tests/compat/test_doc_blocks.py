"""Adapted from Prefect 2 docs/concepts/blocks.md ("Using existing block types", "Creating
new block types", "Secret fields", "Nested blocks") and docs/concepts/filesystems.md
(LocalFileSystem): only the imports changed."""

from typing import Dict

from pydantic import Field

from fleetflow.blocks.core import Block
from fleetflow.blocks.fields import SecretDict
from fleetflow.blocks.system import JSON, DateTime, Secret, String
from fleetflow.filesystems import LocalFileSystem
from fleetflow.blocks import SecretStr
from fleetflow import flow


def test_using_existing_block_types(temp_store):
    secret_block = Secret(value="shhh!-it's-a-secret")
    secret_block.save("secret-thing")
    loaded = Secret.load("secret-thing")
    assert loaded.get() == "shhh!-it's-a-secret"
    assert "shhh" not in str(loaded)

    json_block = JSON(value={"the_answer": 42})
    json_block.save("life-the-universe-everything")
    assert JSON.load("life-the-universe-everything").value == {"the_answer": 42}

    String(value="hello").save("greeting")
    assert String.load("greeting").value == "hello"
    DateTime(value="2024-01-01T00:00:00Z").save("new-year")
    assert DateTime.load("new-year").value.year == 2024


def test_block_used_inside_a_flow(temp_store):
    Secret(value="token-123").save("api-token")

    @flow
    def uses_secret():
        return len(Secret.load("api-token").get())

    assert uses_secret() == 9


def test_creating_new_block_types_with_secret_fields(temp_store):
    class AWSCredentials(Block):
        aws_access_key_id: str = None
        aws_secret_access_key: SecretStr = None
        aws_session_token: str = None
        profile_name: str = None
        region_name: str = None

    AWSCredentials(aws_access_key_id="AKIAJKLJKLJKLJKLJKL", aws_secret_access_key="wJalrXUtnFEMI").save("my-creds")
    loaded = AWSCredentials.load("my-creds")
    assert loaded.aws_secret_access_key.get_secret_value() == "wJalrXUtnFEMI"
    assert "wJalrXUtnFEMI" not in repr(loaded)


def test_secret_dict(temp_store):
    class SystemConfiguration(Block):
        system_secrets: SecretDict
        system_variables: Dict

    system_configuration_block = SystemConfiguration(
        system_secrets={
            "password": "p@ssw0rd",
            "api_token": "token_123456789",
            "private_key": "<private key here>",
        },
        system_variables={
            "self_destruct_countdown_seconds": 60,
            "self_destruct_countdown_stop_time": 7,
        },
    )
    system_configuration_block.save("my-config")
    loaded = SystemConfiguration.load("my-config")
    assert "p@ssw0rd" not in repr(loaded)
    assert loaded.system_secrets.get_secret_value()["password"] == "p@ssw0rd"
    assert loaded.system_variables["self_destruct_countdown_seconds"] == 60


def test_nested_blocks(temp_store):
    class Credentials(Block):
        username: str
        password: SecretStr

    class Database(Block):
        host: str = Field(description="Database host.")
        credentials: Credentials

    Database(host="db.internal", credentials=Credentials(username="marvin", password="pw")).save("warehouse")
    db = Database.load("warehouse")
    assert db.credentials.username == "marvin" and db.credentials.password.get_secret_value() == "pw"


def test_local_file_system_read_and_write_paths(temp_store, tmp_path):
    fs = LocalFileSystem(basepath=str(tmp_path / "data"))
    fs.save("dev", overwrite=True)
    loaded = LocalFileSystem.load("dev")
    path = loaded.write_path("reports/out.txt", b"hello")
    assert path.endswith("reports/out.txt")
    assert loaded.read_path("reports/out.txt") == b"hello"
