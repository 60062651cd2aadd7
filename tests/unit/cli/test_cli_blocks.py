"""`fleetflow block`: ls, inspect (secrets masked), delete, types.

Runs against SQLite and PostgreSQL through the ``temp_store`` fixture.
"""

from __future__ import annotations

import json

from clihelpers import assert_one_line_error, invoke
from pydantic import Field

from fleetflow.blocks import Block, SecretStr

PLAINTEXT = "hunter2-do-not-print"


class CliSecretThing(Block):
    """A throwaway block with a secret, to prove the CLI never prints it."""

    _block_type_slug = "cli-secret-thing"
    _description = "Test block with a password."

    user: str = Field(default="bob", description="Who logs in.")
    password: SecretStr = Field(description="The password (secret).")
    nested: dict = Field(default_factory=dict, description="Free-form settings.")


def _save(name: str = "mine") -> None:
    CliSecretThing(user="alice", password=PLAINTEXT).save(name)


def test_ls_lists_blocks_without_values(temp_store):
    _save()
    result = invoke("block", "ls")
    assert result.exit_code == 0, result.output
    assert "cli-secret-thing" in result.stdout and "mine" in result.stdout
    assert PLAINTEXT not in result.output
    data = json.loads(invoke("block", "ls", "--json", "--type", "cli-secret-thing").stdout)
    assert [(d["block_type"], d["name"]) for d in data] == [("cli-secret-thing", "mine")]
    assert "data" not in data[0]
    assert json.loads(invoke("block", "ls", "--json", "--type", "local-file-system").stdout) == []


def test_inspect_masks_secrets(temp_store):
    _save()
    result = invoke("block", "inspect", "cli-secret-thing/mine")
    assert result.exit_code == 0, result.output
    assert "alice" in result.stdout and "********" in result.stdout
    assert PLAINTEXT not in result.output
    data = json.loads(invoke("block", "inspect", "cli-secret-thing/mine", "--json").stdout)
    assert data["data"]["password"] == "********" and data["data"]["user"] == "alice"
    assert PLAINTEXT not in json.dumps(data)


def test_inspect_errors_are_one_line(temp_store):
    _save()
    assert_one_line_error(invoke("block", "inspect", "cli-secret-thing"), "type/name")
    assert_one_line_error(invoke("block", "inspect", "cli-secret-thing/other"), "other")


def test_delete_asks_unless_yes(temp_store):
    _save("one")
    _save("two")
    declined = invoke("block", "delete", "cli-secret-thing/one", input="n\n")
    assert declined.exit_code == 1
    assert {d.name for d in temp_store.read_block_documents("cli-secret-thing")} == {"one", "two"}

    confirmed = invoke("block", "delete", "cli-secret-thing/one", input="y\n")
    assert confirmed.exit_code == 0, confirmed.output
    assert invoke("block", "delete", "cli-secret-thing/two", "--yes").exit_code == 0
    assert temp_store.read_block_documents("cli-secret-thing") == []
    assert_one_line_error(invoke("block", "delete", "cli-secret-thing/two", "--yes"), "two")


def test_types_lists_and_describes(temp_store):
    result = invoke("block", "types")
    assert result.exit_code == 0, result.output
    assert "local-file-system" in result.stdout and "process" in result.stdout
    slugs = {t["slug"] for t in json.loads(invoke("block", "types", "--json").stdout)}
    assert {"local-file-system", "process", "cli-secret-thing"} <= slugs

    described = json.loads(invoke("block", "types", "cli-secret-thing", "--json").stdout)
    fields = {f["name"]: f for f in described["fields"]}
    assert described["description"] == "Test block with a password."
    assert fields["password"]["secret"] and fields["password"]["required"]
    assert fields["user"]["default"] == "bob" and fields["user"]["description"] == "Who logs in."
    text = invoke("block", "types", "cli-secret-thing")
    assert "password" in text.stdout and "(secret)" in text.stdout and "Who logs in." in text.stdout
    assert_one_line_error(invoke("block", "types", "no-such-type"), "no-such-type")
