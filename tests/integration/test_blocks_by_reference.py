"""Blocks cross process boundaries by reference: a saved block passed to a deployment run
arrives in the child with its real secret, the run record and results hold only
``{"$fleetflow_block": "type/name"}``, and an unsaved block is refused before any run exists."""

from __future__ import annotations

import json

import pytest

from fleetflow import flow
from fleetflow.aws import AwsCredentials
from fleetflow.deployments import run_deployment
from fleetflow.exceptions import ParameterValidationError

SECRET = "wJalrXUtnFEMI-by-reference-only"

CHILD = '''
from fleetflow import flow
from fleetflow.aws import AwsCredentials

@flow
def uses_creds(creds: AwsCredentials, expected: str) -> dict:
    return {"matches": creds.aws_secret_access_key.get_secret_value() == expected, "key_id": creds.aws_access_key_id}
'''


@pytest.fixture
def creds(temp_store) -> AwsCredentials:
    block = AwsCredentials(aws_access_key_id="AKIAREFERENCE", aws_secret_access_key=SECRET, region_name="eu-west-1")
    block.save("by-ref", overwrite=True)
    return block


def test_a_saved_block_reaches_the_child_with_its_secret(temp_store, project, worker, creds):
    (project / "blocky.py").write_text(CHILD)
    from fleetflow.deployments import Deployment
    from fleetflow.entrypoints import load_flow_from_entrypoint

    Deployment.build_from_flow(load_flow_from_entrypoint("blocky.py:uses_creds", project), "ref",
                               path=str(project), work_pool_name="test-pool").apply()  # fmt: skip

    @flow
    def parent():
        return run_deployment("uses-creds/ref", parameters={"creds": AwsCredentials.load("by-ref"), "expected": SECRET}).result()

    assert parent() == {"matches": True, "key_id": "AKIAREFERENCE"}
    (child,) = temp_store.read_flow_runs(flow_name="uses-creds")
    assert child.parameters["creds"] == {"$fleetflow_block": "aws-credentials/by-ref"}
    assert "**" not in json.dumps(child.parameters["creds"])


def test_an_unsaved_block_is_refused_before_any_run_exists(temp_store, project, worker):
    from fleetflow.deployments import Deployment
    from fleetflow.entrypoints import load_flow_from_entrypoint

    (project / "untyped.py").write_text("from fleetflow import flow\n\n@flow\ndef take_any(x=None):\n    return 1\n")
    Deployment.build_from_flow(load_flow_from_entrypoint("untyped.py:take_any", project), "unsaved",
                               path=str(project), work_pool_name="test-pool").apply()  # fmt: skip
    unsaved = AwsCredentials(aws_access_key_id="AKIAUNSAVED", aws_secret_access_key=SECRET)
    with pytest.raises(ParameterValidationError, match="parameter 'x'.*save it first") as info:
        run_deployment("take-any/unsaved", parameters={"x": unsaved}, timeout=0, as_subflow=False)
    assert SECRET not in str(info.value)
    assert temp_store.read_flow_runs(flow_name="take-any") == []


def test_a_returned_saved_block_is_stored_as_a_reference(temp_store, creds):
    @flow
    def hands_back():
        return AwsCredentials.load("by-ref")

    state = hands_back(return_state=True)
    run = temp_store.read_flow_runs(flow_name="hands-back")[0]
    stored = json.dumps(run.state.data)
    assert SECRET not in stored and "aws-credentials/by-ref" in stored
    again = run.state.result()  # read back from the store, as another process would
    assert isinstance(again, AwsCredentials) and again.aws_secret_access_key.get_secret_value() == SECRET
    assert state.result().aws_access_key_id == "AKIAREFERENCE"
