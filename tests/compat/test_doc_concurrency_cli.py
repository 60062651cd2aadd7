"""Adapted from Prefect 2 docs/concepts/tasks.md ("Task run concurrency limits": the
`concurrency-limit` CLI and tagged tasks) and the CLI habits of docs/getting-started
(`prefect version`/`--version`, `prefect flow ls`): only the command name changed."""

import sys
import textwrap

from compat_docs import cli, run_script


def test_concurrency_limit_cli_and_a_tagged_task(temp_store, tmp_path):
    created = cli("concurrency-limit", "create", "small_instance", "10")
    assert created.returncode == 0 and "concurrency_limit=10" in created.stdout
    inspected = cli("concurrency-limit", "inspect", "small_instance")
    assert "small_instance" in inspected.stdout and "10" in inspected.stdout
    assert "small_instance" in cli("concurrency-limit", "ls").stdout

    script = tmp_path / "tagged.py"
    script.write_text(textwrap.dedent('''
        from fleetflow import flow, task
        from fleetflow.client import get_client

        @task(tags=["small_instance"])
        def my_task():
            limit = [c for c in get_client().read_concurrency_limits() if c.tag == "small_instance"][0]
            return len(limit.active_slots)

        @flow
        def my_flow():
            return my_task()

        print("slots in use while running:", my_flow())
    '''))
    out = run_script(script)
    assert out.returncode == 0, out.stderr
    assert "slots in use while running: 1" in out.stdout
    assert cli("concurrency-limit", "delete", "small_instance").returncode == 0
    assert "small_instance" not in cli("concurrency-limit", "ls").stdout


def test_version_and_flow_ls(temp_store, tmp_path):
    from fleetflow import __version__, flow

    assert cli("--version").stdout.strip() == f"fleetflow {__version__}"

    @flow
    def etl():
        return 1

    etl()
    listing = cli("flow", "ls")
    assert listing.returncode == 0 and "etl" in listing.stdout


def test_prefect_option_names_get_a_fleetflow_suggestion():
    result = cli("deployment", "build", "flows.py:f", "-n", "x", "--work-pool", "p")
    assert result.returncode != 0 and "use -p/--pool POOL" in result.stderr
