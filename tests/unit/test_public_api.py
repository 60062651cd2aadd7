import fleetflow


def test_public_api_is_pinned():
    assert sorted(fleetflow.__all__) == sorted([
        "flow", "task", "Flow", "Task", "get_run_logger", "get_client", "run_deployment", "unmapped",
        "task_input_hash", "exponential_backoff", "State", "StateType", "FleetflowError", "__version__",
        "allow_failure", "pause_flow_run", "resume_flow_run", "tags",
    ])


def test_every_public_name_resolves():
    for name in fleetflow.__all__:
        assert getattr(fleetflow, name) is not None, name
