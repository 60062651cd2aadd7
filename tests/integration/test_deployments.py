"""Deployments: bundles, validation at apply time, YAML round trip, CLI."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from fleetflow.cli import app
from fleetflow.deployments import Deployment
from fleetflow.exceptions import InvalidNameError, InvalidOverrideError, ParameterValidationError
from worker_helpers import deploy, load


def test_apply_uploads_one_bundle_and_skips_unchanged(temp_store, project, tmp_path):
    from fleetflow.blocks import Block

    dep_id = deploy(project, "echo", "e1")
    d = temp_store.read_deployment(dep_id)
    assert d.entrypoint == "flows.py:echo" and len(d.bundle_digest) == 64
    storage = Block.load(d.storage_block)
    stored = list((tmp_path / "home").rglob("bundle-*.tar.gz")) or list(__import__("pathlib").Path(storage.basepath).expanduser().rglob("bundle-*"))
    assert len(stored) == 1
    mtime = stored[0].stat().st_mtime_ns
    assert temp_store.read_deployment(deploy(project, "echo", "e1")).bundle_digest == d.bundle_digest
    assert stored[0].stat().st_mtime_ns == mtime  # not uploaded again
    (project / "flows.py").write_text((project / "flows.py").read_text() + "\n# changed\n")
    assert temp_store.read_deployment(deploy(project, "echo", "e1")).bundle_digest != d.bundle_digest


def test_unknown_override_is_rejected_at_apply(temp_store, project):
    with pytest.raises(InvalidOverrideError) as err:
        deploy(project, "echo", "bad", infra_overrides={"memroy": 512})
    assert "memroy" in str(err.value) and "memory" in str(err.value)
    with pytest.raises(InvalidOverrideError, match="memory"):
        deploy(project, "echo", "bad", infra_overrides={"memory": "lots"})
    assert temp_store.read_deployments() == []


def test_default_parameters_validated_at_apply(temp_store, project):
    with pytest.raises(ParameterValidationError, match="'x'"):
        deploy(project, "echo", "bad", parameters={"x": "not-int"})
    with pytest.raises(ParameterValidationError, match="unknown"):
        deploy(project, "echo", "bad", parameters={"y": 1})


def test_deployment_name_validated(temp_store, project):
    with pytest.raises(InvalidNameError):
        Deployment.build_from_flow(load(project, "echo"), "no/slash", path=str(project))


def test_yaml_build_and_apply_via_cli(temp_store, project, monkeypatch):
    monkeypatch.chdir(project)
    runner = CliRunner()
    out = runner.invoke(app, ["deployment", "build", "flows.py:echo", "-n", "from-yaml", "-p", "yaml-pool",
                              "--override", "memory=512", "--param", "x=5", "-o", "dep.yaml"])
    assert out.exit_code == 0, out.output
    assert "memory: 512" in (project / "dep.yaml").read_text()
    out = runner.invoke(app, ["deployment", "apply", "dep.yaml"])
    assert out.exit_code == 0, out.output
    d = temp_store.read_deployment_by_name("echo/from-yaml")
    assert d.infra_overrides == {"memory": 512} and d.parameters == {"x": 5} and d.work_pool_name == "yaml-pool"
    listing = runner.invoke(app, ["deployment", "ls"], env={"COLUMNS": "200"})
    assert "echo/from-yaml" in listing.output
    bad = runner.invoke(app, ["deployment", "build", "flows.py:echo", "-n", "x", "--override", "memroy=1"])
    assert bad.exit_code == 1 and "memroy" in bad.output and "Traceback" not in bad.output


def test_deployment_run_unknown_name_is_one_line(temp_store):
    out = CliRunner().invoke(app, ["deployment", "run", "nope/nothing"])
    assert out.exit_code == 1 and "Traceback" not in out.output
