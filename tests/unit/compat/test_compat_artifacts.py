"""Area 7: artifacts stored per run, listed by `artifact ls` and `flow-run inspect`."""

from __future__ import annotations

import json

import pytest

from fleetflow import flow, task
from fleetflow.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact
from fleetflow.exceptions import ConfigurationError


def test_artifacts_are_stored_with_their_runs(temp_store):
    @task
    def report():
        return create_table_artifact([{"model": "a", "auc": 0.9}, {"model": "b", "auc": 0.8}], key="scores")

    @flow
    def publish():
        md = create_markdown_artifact("# Report\nall good", key="summary", description="nightly")
        link = create_link_artifact("https://example.com/dash", link_text="dashboard")
        return md, link, report()

    md_id, link_id, table_id = publish()
    run = temp_store.read_flow_runs(flow_name="publish")[0]
    arts = {a.id: a for a in temp_store.read_artifacts(flow_run_id=run.id)}
    assert set(arts) == {md_id, link_id, table_id}
    assert arts[md_id].type == "markdown" and arts[md_id].data.startswith("# Report") and arts[md_id].description == "nightly"
    assert arts[link_id].data == {"link": "https://example.com/dash", "link_text": "dashboard"}
    table = arts[table_id]
    assert table.data[0] == {"model": "a", "auc": 0.9} and table.task_run_id is not None


def test_table_from_columns_and_bad_key(temp_store):
    art_id = create_table_artifact({"x": [1, 2], "y": ["a", "b"]})
    (art,) = [a for a in temp_store.read_artifacts() if a.id == art_id]
    assert art.data == [{"x": 1, "y": "a"}, {"x": 2, "y": "b"}] and art.flow_run_id is None
    with pytest.raises(ConfigurationError, match="lowercase"):
        create_markdown_artifact("x", key="Bad Key")


def test_artifact_cli_and_flow_run_inspect(temp_store):
    from compat_cli import invoke

    @flow
    def nightly():
        create_markdown_artifact("# v1", key="report")
        create_markdown_artifact("# v2 latest", key="report")

    nightly()
    run = temp_store.read_flow_runs(flow_name="nightly")[0]
    listing = invoke("artifact", "ls", "--key", "report")
    assert listing.exit_code == 0 and "# v2 latest" in listing.stdout and "# v1" in listing.stdout
    inspected = invoke("artifact", "inspect", "report")
    assert "# v2 latest" in inspected.stdout and "# v1" not in inspected.stdout
    shown = invoke("flow-run", "inspect", run.id)
    assert shown.exit_code == 0 and "report" in shown.stdout and "markdown" in shown.stdout
    as_json = json.loads(invoke("flow-run", "inspect", run.id, "--json").stdout)
    assert [a["data"] for a in as_json["artifacts"]] == ["# v2 latest", "# v1"]
    missing = invoke("artifact", "inspect", "nope")
    assert missing.exit_code == 1 and "artifact ls" in missing.stderr
