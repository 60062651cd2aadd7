"""Area 12: console lines like Prefect's; a failure logged once with the user's frames only,
one log line per retry, and a short traceback for the caller."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent('''
    from fleetflow import flow, task

    @task
    def extract():
        return [1, 2]

    @task(retries=1, retry_delay_seconds=0)
    def transform(rows):
        raise ValueError("bad row " + str(rows[0]))

    @flow(name="sample-flow")
    def sample():
        rows = extract()
        extract.submit().wait()
        transform(rows)

    sample()
''')


def _run(tmp_path):
    script = tmp_path / "sample.py"
    script.write_text(SCRIPT)
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=os.environ.copy(), timeout=120)


def test_console_lines_match_prefect(temp_store, tmp_path, backend):
    out = _run(tmp_path)
    assert out.returncode == 1
    err = out.stderr
    run = temp_store.read_flow_runs(flow_name="sample-flow")[0]
    assert f"Created flow run '{run.name}' for flow 'sample-flow'" in err
    assert "Created task run 'extract-0' for task 'extract'" in err
    assert "Executing 'extract-0' immediately..." in err
    assert "Submitted task run 'extract-1' for execution." in err
    assert "Task run 'extract-0' - Finished in state Completed()" in err
    assert "Task run failed with exception ValueError('bad row 1') - Retry 1/1 will start 0 second(s) from now" in err
    assert "Finished in state Failed('ValueError: bad row 1')" in err
    if backend.startswith("http"):  # a server is configured: its web UI has the run's page, as Prefect prints
        assert f"View at {os.environ['FLEETFLOW_API_URL'].rstrip('/')}/runs/{run.id}" in err
    else:
        assert "View at" not in err


def test_failure_logged_with_user_frames_and_short_caller_traceback(temp_store, tmp_path):
    out = _run(tmp_path)
    run = temp_store.read_flow_runs(flow_name="sample-flow")[0]
    logs = [r.message for r in temp_store.read_logs(flow_run_id=run.id)]
    failures = [m for m in logs if m.startswith("Encountered exception during execution:")]
    assert len(failures) == 2  # one per failed attempt of transform; the flow does not log it again
    for text in failures:
        assert 'sample.py", line' in text and "raise ValueError" in text
        assert "fleetflow" not in text and "tenacity" not in text and "concurrent" not in text
    assert sum("Retry 1/1" in m for m in logs) == 1
    caller_tb = out.stderr[out.stderr.rindex("Traceback (most recent call last):"):]
    frames = re.findall(r'File "([^"]+)"', caller_tb)
    assert frames[0].endswith("sample.py") and frames[-1].endswith("sample.py")
    assert sum("fleetflow" in f for f in frames) <= 1 and not any("tenacity" in f for f in frames)


def test_task_run_lines_can_be_turned_off_but_failures_stay(temp_store, tmp_path, monkeypatch):
    monkeypatch.setenv("FLEETFLOW_TASK_RUN_LOG_LINES", "false")
    out = _run(tmp_path)
    assert "Created task run" not in out.stderr and "Executing 'extract-0'" not in out.stderr
    assert "Retry 1/1" in out.stderr and "Encountered exception during execution:" in out.stderr
    assert "Task run 'transform-0' - Finished in state Failed('ValueError: bad row 1')" in out.stderr
