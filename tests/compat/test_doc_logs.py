"""Adapted from Prefect 2 docs/concepts/logs.md ("Logging configuration", "Logging print
statements") and the console output shown in docs/concepts/flows.md and task-runners.md:
only the imports changed."""

import textwrap

from compat_docs import run_script


def test_logger_and_console_lines(temp_store, tmp_path):
    script = tmp_path / "logme.py"
    script.write_text(textwrap.dedent('''
        from fleetflow import flow, task, get_run_logger

        @task(name="log-example-task")
        def logger_task():
            logger = get_run_logger()
            logger.info("INFO level log message from a task.")

        @flow(name="log-example-flow")
        def logger_flow():
            logger = get_run_logger()
            logger.info("INFO level log message.")
            logger.debug("You only see this message if the logging level is set to DEBUG. 🙂")
            logger_task()

        logger_flow()
    '''))
    out = run_script(script)
    assert out.returncode == 0, out.stderr
    run = temp_store.read_flow_runs(flow_name="log-example-flow")[0]
    err = out.stderr
    assert f"| INFO    | fleetflow.engine - Created flow run '{run.name}' for flow 'log-example-flow'" in err
    assert f"| INFO    | Flow run '{run.name}' - INFO level log message." in err
    assert f"Flow run '{run.name}' - Created task run 'log-example-task-0' for task 'log-example-task'" in err
    assert f"Flow run '{run.name}' - Executing 'log-example-task-0' immediately..." in err
    assert "| INFO    | Task run 'log-example-task-0' - INFO level log message from a task." in err
    assert "Task run 'log-example-task-0' - Finished in state Completed()" in err
    assert f"Flow run '{run.name}' - Finished in state Completed('All states completed.')" in err
    assert "You only see this message" not in err


def test_log_prints(temp_store, tmp_path):
    script = tmp_path / "prints.py"
    script.write_text(textwrap.dedent('''
        from fleetflow import task, flow

        @task
        def my_task():
            print("we're logging print statements from a task")

        @flow(log_prints=True)
        def my_flow():
            print("we're logging print statements from a flow")
            my_task()

        my_flow()
    '''))
    out = run_script(script)
    assert out.returncode == 0, out.stderr
    run = temp_store.read_flow_runs(flow_name="my-flow")[0]
    messages = [r.message for r in temp_store.read_logs(flow_run_id=run.id)]
    assert "we're logging print statements from a flow" in messages
    assert "we're logging print statements from a task" in messages
