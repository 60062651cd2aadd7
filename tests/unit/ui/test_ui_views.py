"""The UI's pure view models: durations, infrastructure labels and console links, stop reasons
in words, result previews, the Custom run form and the timeline's lanes."""

from __future__ import annotations

import datetime as dt

from fleetflow.orchestrator.schemas import Deployment, FlowRun, TaskRun
from fleetflow.server.ui import forms, timeline, views
from fleetflow.server.ui.session import csrf_token
from fleetflow.states import State, StateType

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def test_durations_read_at_a_glance():
    assert views.duration(None, None) == ""
    assert views.duration(T0, T0 + dt.timedelta(seconds=1.24)) == "1.2 s"
    assert views.duration(T0, T0 + dt.timedelta(seconds=184)) == "3 m 04 s"
    assert views.duration(T0, T0 + dt.timedelta(hours=2, minutes=5)) == "2 h 05 m"
    assert views.duration(T0, None, now=T0 + dt.timedelta(seconds=30)) == "30.0 s"  # running: to now


def test_infrastructure_labels_prefer_the_launched_size_over_the_requested_one():
    assert views.infra_label({"kind": "ecs-task", "cpu": 1024, "memory": 4096}) == "ECS 1024 cpu / 4096 MiB"
    assert views.infra_label({}, {"cpu": 512, "memory": 1024}) == "requested 512 cpu / 1024 MiB"
    assert views.infra_label({}) == "—"
    assert views.infra_label({"kind": "process"}) == "Process"
    assert views.infra_kind({"kind": "ecs-task"}) == "ecs" and views.infra_kind({"kind": "in-process"}) == "process"


def test_an_ecs_handle_links_to_the_task_console_and_its_log_streams():
    arn = "arn:aws:ecs:us-east-2:123456789012:task/prod-cluster/abc123"
    run = FlowRun(id="r", name="n", flow_name="f", infrastructure_pid=arn,
                  infrastructure={"kind": "ecs-task", "cluster": "arn:aws:ecs:us-east-2:1:cluster/prod-cluster"})  # fmt: skip
    handle = views.handle(run)
    assert ("ECS task", arn) in handle.lines and ("cluster", "prod-cluster") in handle.lines
    links = dict(handle.links)
    assert links["ECS console"] == ("https://us-east-2.console.aws.amazon.com/ecs/v2/clusters/prod-cluster/tasks/abc123/"
                                    "configuration?region=us-east-2")  # fmt: skip
    assert links["CloudWatch logs"].endswith("#logsV2:log-groups$3FlogStreamNameFilter$3Dabc123")
    streamed = views.cloudwatch_url("us-east-2", {"log_group": "/ecs/flows", "log_stream": "flow/flow/abc123"}, "abc123")
    assert streamed.endswith("log-group/$252Fecs$252Fflows/log-events/flow$252Fflow$252Fabc123")


def test_a_process_handle_shows_pid_and_host():
    run = FlowRun(id="r", name="n", flow_name="f", infrastructure_pid="process:worker-7:31337:99.5")
    assert views.handle(run).lines == [("process", "pid 31337"), ("host", "worker-7")]
    assert views.handle(run).links == []


def test_stop_reasons_in_words():
    def why(kind: StateType, message: str) -> str:
        return views.stop_reason(State(type=kind, message=message))

    assert why(StateType.CRASHED, "out of memory: the flow container was killed for using more than 512 MiB") == "Out of memory"
    assert why(StateType.CRASHED, "could not pull the image repo/x:1: check the image name") == "Image pull failed"
    assert why(StateType.CRASHED, "it was a Fargate Spot interruption (AWS reclaimed the capacity)") == "Spot capacity reclaimed"
    assert why(StateType.CRASHED, "the flow container was killed by SIGKILL (exit 137)") == "Killed (SIGKILL, likely out of memory)"
    assert why(StateType.FAILED, "ValueError: bad row") == "Failed"
    assert views.stop_reason(State(type=StateType.COMPLETED, message="out of memory")) == ""


def test_result_preview_inlines_small_json_and_refers_to_stored_results():
    small = State(type=StateType.COMPLETED, data={"result": {"serializer": "json", "value": '{"mse": 0.5}'}})
    assert views.result_preview(small) == ("json", '{\n  "mse": 0.5\n}')
    stored = State(type=StateType.COMPLETED, data={"result": {"serializer": "pickle", "key": "ab12", "storage": {}}})
    kind, text = views.result_preview(stored)
    assert kind == "ref" and '"key": "ab12"' in text
    assert views.result_preview(State(type=StateType.FAILED)) == ("", "")


def test_worker_health_turns_stale_after_missed_heartbeats():
    assert views.worker_health(T0, now=T0 + dt.timedelta(seconds=30)) == "healthy"
    assert views.worker_health(T0, now=T0 + dt.timedelta(minutes=5)) == "stale"


def test_csrf_tokens_differ_per_session_key():
    assert csrf_token("ffk_a") == csrf_token("ffk_a") != csrf_token("ffk_b")


def _deployment() -> Deployment:
    schema = {"properties": {"n": {"type": "integer"}, "name": {"type": "string"}, "flags": {"type": "array"},
                             "fast": {"type": "boolean"}, "rate": {"anyOf": [{"type": "number"}, {"type": "null"}]}},
              "required": ["n", "name"]}  # fmt: skip
    return Deployment(id="d", name="d", flow_name="f", entrypoint="f.py:f", parameter_schema=schema,
                      parameters={"n": 5}, infra_overrides={"memory": 4096})  # fmt: skip


def test_the_custom_run_form_follows_the_schema_and_the_defaults():
    fields = {f.name: f for f in forms.parameter_fields(_deployment())}
    assert [(f.name, f.kind) for f in fields.values()] == [("n", "number"), ("name", "text"), ("flags", "json"),
                                                          ("fast", "bool"), ("rate", "number")]  # fmt: skip
    assert fields["n"].value == "5" and not fields["n"].required  # has a default
    assert fields["name"].required and fields["name"].value == ""
    overrides = {f.name: f for f in forms.override_fields(_deployment())}
    assert overrides["memory"].help.endswith("deployment: 4096")


def test_posted_text_becomes_parameters_and_overrides():
    posted = {"p.n": "7", "p.name": " spaced ", "p.flags": '["a", 1]', "p.fast": "true", "p.rate": "",
              "o.cpu": "2048", "o.memory": ""}  # fmt: skip
    params = forms.parameter_fields(_deployment(), posted)
    assert forms.parse_parameters(params) == {"n": 7, "name": " spaced ", "flags": ["a", 1], "fast": True}
    overrides = forms.override_fields(_deployment(), posted)
    assert forms.parse_overrides(overrides) == {"cpu": 2048}
    bad = forms.override_fields(_deployment(), {"o.cpu": "two"})
    assert forms.parse_overrides(bad) == {} and "whole number" in bad[0].error
    unparsable = forms.parameter_fields(_deployment(), {"p.n": "ten"})
    assert forms.parse_parameters(unparsable) == {"n": "ten"}  # left for the store's type check to refuse
    assert forms.place_error("n", unparsable, bad, "n must be an integer") and unparsable[0].error == "n must be an integer"
    assert not forms.place_error("image", unparsable, bad, "?")


def _task(i: int, start: float, end: float | None) -> TaskRun:
    state = State(type=StateType.COMPLETED if end is not None else StateType.RUNNING)
    return TaskRun(id=f"t{i}", flow_run_id="r", task_key="k", name=f"task-{i}", state=state,
                   start_time=T0 + dt.timedelta(seconds=start),
                   end_time=T0 + dt.timedelta(seconds=end) if end is not None else None)  # fmt: skip


def test_timeline_packs_sequential_work_into_one_lane_and_stacks_concurrent_work():
    tasks = [_task(0, 0, 1), _task(1, 1, 2), _task(2, 0.5, 3), _task(3, 2, None)]
    items = timeline.bars(tasks, [])
    assert timeline.lanes(items, now=T0 + dt.timedelta(seconds=4)) == [0, 0, 1, 0]


def test_timeline_stays_bounded_at_a_thousand_task_runs_and_escapes_names():
    tasks = [_task(i, i * 0.01, i * 0.01 + 5) for i in range(1000)]
    tasks.append(TaskRun(id="evil", flow_run_id="r", task_key="k", name="<script>x</script>", start_time=T0,
                         end_time=T0 + dt.timedelta(seconds=1), state=State(type=StateType.FAILED)))  # fmt: skip
    svg = timeline.svg(tasks, [], now=T0 + dt.timedelta(seconds=20))
    assert svg.count("<path") == 2 and svg.count("M") == 1001  # one path per state, one shape per bar
    assert "<title>1000 completed task runs</title>" in svg and "<title>1 failed task runs</title>" in svg
    assert len(svg) < 40_000
    few = timeline.svg(tasks[-3:], [], now=T0 + dt.timedelta(seconds=20))
    assert few.count("<rect") == 3 and "<script>" not in few and "&lt;script&gt;" in few
    assert 'class="timeline folded"' in svg  # 500 concurrent bars: lanes fold, rows stay visible
    height = float(svg.split('viewBox="0 0 1000 ')[1].split('"')[0])
    assert height <= timeline.MAX_HEIGHT + 10
    assert timeline.svg([], []) == ""


def test_timeline_links_child_runs_and_leaves_out_their_linking_task_runs():
    child = FlowRun(id="c1", name="train-child", flow_name="train", parent_task_run_id="link", state=State(type=StateType.RUNNING),
                    start_time=T0, end_time=None)  # fmt: skip
    link = _task(9, 0, None).model_copy(update={"id": "link"})
    svg = timeline.svg([link, _task(1, 0, 1)], [child], now=T0 + dt.timedelta(seconds=2))
    assert '<a href="/runs/c1">' in svg and svg.count("<rect") == 2 and "task-9" not in svg


def test_log_lines_escape_names_and_messages_and_name_the_task():
    from fleetflow.orchestrator.schemas import LogRecord

    records = [LogRecord(id=7, task_run_id="t1", level=40, name="flow", message="<b>bad</b> & worse", timestamp=T0),
               LogRecord(id=8, level=5, name="<flow>", message="low", timestamp=T0 + dt.timedelta(milliseconds=1234))]
    html = str(views.log_lines(records, {"t1": "step<1>"}))
    assert html.count('<div class="log ') == 2 and html.endswith("</div>\n")
    assert '<div class="log lerror" data-id="7">' in html and '<span class="lvl">ERROR</span>' in html
    assert '<span class="src">step&lt;1&gt;</span>' in html and "&lt;b&gt;bad&lt;/b&gt; &amp; worse" in html
    assert '<div class="log ldebug" data-id="8">' in html and '<span class="src">&lt;flow&gt;</span>' in html
    assert f'<span class="ts">{(T0 + dt.timedelta(milliseconds=1234)).strftime("%H:%M:%S")}.234</span>' in html
    assert views.log_lines([]) == ""
