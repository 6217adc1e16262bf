"""migrate smoke: schemas against MLflow's own types, SSE parsing and comparison, the server process, every
bad input as its finding, no process left behind, the smoke check, and (e2e) real migrated apps with parity.

Quick tests drive a fake app server (tests/fixtures/smoke/fake_start_server.py, a stdlib HTTP server that
starts at once and misbehaves on cue); e2e tests serve real migrated agents with MLflow's AgentServer
against the workspace stand-in.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from checks.smoke import check_smoke, smoke_findings
from scripts.core.schema_registry import validation_errors
from scripts import app_process
from scripts import responses_stream as rs
from scripts.core.layout import MigrationLayout
from tests.conftest import REPO
from tests.conftest import migrate_in_process as run_migrate  # in-process; Ctrl-C tests start their own process

pytestmark = pytest.mark.serial_minutes(4)  # run first under xdist: tests/conftest.py

FAKE_SERVER = Path(__file__).parent / "fixtures" / "smoke" / "fake_start_server.py"
REQUEST = {"input": [{"role": "user", "content": "hi"}], "custom_inputs": {"session": "s1"}}


# ---------------------------------------------------------------------------------------------------- schemas


def mlflow_samples():
    """Responses and stream events built with MLflow's own types and helpers."""
    from mlflow.pyfunc import ResponsesAgent
    from mlflow.types.responses import ResponsesAgentResponse, ResponsesAgentStreamEvent

    text = ResponsesAgent.create_text_output_item(text="hello", id="msg-1")
    call = ResponsesAgent.create_function_call_item(id="fc-1", call_id="call-1", name="lookup",
                                                    arguments='{"q": "x"}')
    output = ResponsesAgent.create_function_call_output_item(call_id="call-1", output="42")
    reasoning = ResponsesAgent.create_reasoning_item(id="r-1", reasoning_text="thinking")
    response = ResponsesAgentResponse(
        output=[call, output, reasoning, text], custom_outputs={"k": [1, 2]},
        usage={"input_tokens": 1, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 2,
               "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 3},
        metadata={"trace_id": "t"}, tool_choice="auto",
        tools=[{"type": "function", "name": "lookup", "parameters": {"type": "object"}}])
    events = [
        ResponsesAgentStreamEvent(**ResponsesAgent.create_text_delta(delta="hel", item_id="msg-1")),
        ResponsesAgentStreamEvent(**ResponsesAgent.create_annotation_added(
            item_id="msg-1", annotation={"type": "url_citation", "title": "t", "url": "https://x"})),
        ResponsesAgentStreamEvent(type="response.output_item.done", item=text, custom_outputs={"k": 1}),
        ResponsesAgentStreamEvent(type="response.output_item.done", item=call),
        ResponsesAgentStreamEvent(type="error", message="boom", code="E1"),
        ResponsesAgentStreamEvent(type="response.completed", response={"output": [text]}),
        ResponsesAgentStreamEvent(type="response.created", anything="goes"),
    ]
    return response, events


def test_mlflow_responses_validate_against_our_schema():
    response, _ = mlflow_samples()
    assert validation_errors(response.model_dump(exclude_none=True), "responses_agent_response") == []
    assert validation_errors(response.model_dump(), "responses_agent_response") == []  # with explicit nulls


def test_mlflow_stream_events_validate_against_our_schema():
    _, events = mlflow_samples()
    for event in events:
        for dumped in (event.model_dump(exclude_none=True), event.model_dump()):
            assert validation_errors(dumped, "responses_agent_stream_event") == [], dumped


INVALID_RESPONSES = [
    {"output": [{"type": "message", "id": "m", "content": []}]},  # empty content
    {"output": [{"type": "message", "content": [{"type": "output_text", "text": "x"}]}]},  # no id
    {"output": [{"type": "message", "id": "m", "role": "user", "content": [{"type": "output_text", "text": "x"}]}]},
    {"output": [{"type": "function_call", "call_id": "c", "name": "n"}]},  # no arguments
    {"output": [{"type": "teleport"}]},
    {"output": [{"type": "message", "id": "m", "content": [{"type": "output_text", "text": "x"}], "status": "done"}]},
    {"output": [{"type": "message", "id": "m", "content": [{"type": "picture"}]}]},
    {"output": [{"type": "function_call_output", "call_id": "c"}]},
    {"object": "response"},  # no output
]
INVALID_EVENTS = [
    {"type": "response.output_item.done"},
    {"type": "response.output_item.done", "item": {"type": "message", "id": "m", "content": []}},
    {"type": "response.output_text.delta", "delta": "x"},  # no item_id
    {"type": "error"},
    {"type": "response.completed", "response": {}},
    {"error": "boom"},  # AgentServer's mid-stream error event is not a ResponsesAgentStreamEvent
]


@pytest.mark.parametrize("body", INVALID_RESPONSES)
def test_schema_rejects_what_mlflow_rejects_response(body):
    from mlflow.types.responses import ResponsesAgentResponse

    with pytest.raises(Exception):
        ResponsesAgentResponse(**body)
    assert validation_errors(body, "responses_agent_response")


@pytest.mark.parametrize("event", INVALID_EVENTS)
def test_schema_rejects_what_mlflow_rejects_event(event):
    from mlflow.types.responses import ResponsesAgentStreamEvent

    with pytest.raises(Exception):
        ResponsesAgentStreamEvent(**event)
    assert validation_errors(event, "responses_agent_stream_event")


# ---------------------------------------------------------------------------------------------------- SSE and comparison


def test_parse_sse_reads_events_done_and_malformed_lines():
    text = ': comment\nevent: x\ndata: {"type": "a"}\n\ndata: {bad\nnonsense\ndata: [DONE]\n\ndata: {"late": 1}\n'
    parsed = rs.parse_sse(text)
    assert parsed.events == [{"type": "a"}]
    assert parsed.done
    assert len(parsed.malformed) == 3
    assert not rs.parse_sse('data: {"type": "a"}\n').done


def test_error_events_are_found():
    events = [{"type": "response.output_item.done", "item": {}}, {"error": "boom"}, {"type": "error", "message": "m"}]
    assert rs.stream_errors(events) == ["boom", "m"]


def test_generated_ids_compare_by_where_they_recur():
    first = [{"type": "function_call", "id": "a1", "call_id": "c1"}, {"type": "function_call_output", "call_id": "c1"}]
    second = [{"type": "function_call", "id": "b7", "call_id": "z9"}, {"type": "function_call_output", "call_id": "z9"}]
    broken = [{"type": "function_call", "id": "b7", "call_id": "z9"}, {"type": "function_call_output", "call_id": "x"}]
    assert rs.without_generated_ids(first) == rs.without_generated_ids(second)
    assert rs.first_difference(rs.without_generated_ids(first), rs.without_generated_ids(broken)) is not None


def test_structure_view_ignores_text_but_not_tool_names_or_argument_keys():
    def call(name, arguments, text):
        return [{"type": "function_call", "id": "i", "call_id": "c", "name": name, "arguments": arguments},
                {"type": "message", "id": "m", "role": "assistant", "content": [{"type": "output_text", "text": text}]}]

    base = rs.answer_view(call("f", '{"a": 1}', "one"), {"k": 1}, "structure")
    assert base == rs.answer_view(call("f", '{"a": 2}', "two"), {"k": 2}, "structure")
    assert base != rs.answer_view(call("g", '{"a": 1}', "one"), {"k": 1}, "structure")
    assert base != rs.answer_view(call("f", '{"b": 1}', "one"), {"k": 1}, "structure")
    assert base != rs.answer_view(call("f", '{"a": 1}', "one"), {"other": 1}, "structure")
    assert rs.answer_view(call("f", '{"a": 1}', "one"), None, "exact") != rs.answer_view(
        call("f", '{"a": 1}', "two"), None, "exact")


def test_first_difference_names_the_path():
    difference = rs.first_difference({"output": [{"text": "a"}, {"text": "b"}]}, {"output": [{"text": "a"}]})
    assert difference["path"] == "$.output[1]" and difference["actual"] == "<missing>"
    assert rs.first_difference({"a": [1, {"b": 2}]}, {"a": [1, {"b": 3}]})["path"] == "$.a[1].b"


# ---------------------------------------------------------------------------------------------------- the server process


def python_server(code: str):
    """A ServerCommand running `code` with the port as sys.argv[1]."""
    return app_process.ServerCommand(lambda port: [sys.executable, "-c", code, str(port)], Path.cwd(),
                                     dict(os.environ), description="test server")


HEALTHY = ("import sys, http.server\n"
           "class H(http.server.BaseHTTPRequestHandler):\n"
           "    def do_GET(self):\n"
           "        self.send_response(200); self.end_headers(); self.wfile.write(b'ok')\n"
           "http.server.HTTPServer(('127.0.0.1', int(sys.argv[1])), H).serve_forever()\n")


def group_is_gone(pid: int) -> bool:
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_serving_waits_for_health_and_stops_the_group_on_error():
    with pytest.raises(RuntimeError):
        with app_process.serving(python_server(HEALTHY), start_timeout=30) as server:
            import httpx

            assert httpx.get(server.url + "/health").status_code == 200
            pid = server.pid
            raise RuntimeError("the caller failed")
    assert group_is_gone(pid)


def test_serving_reports_the_failing_file_and_line(tmp_path):
    module = tmp_path / "broken_agent.py"
    module.write_text("x = 1\nraise ImportError('no module named nowhere')\n")
    code = f"import sys; sys.path.insert(0, {str(tmp_path)!r}); import broken_agent"
    command = app_process.ServerCommand(lambda port: [sys.executable, "-c", code], tmp_path, dict(os.environ))
    with pytest.raises(app_process.ServerNotReady) as raised:
        with app_process.serving(command, start_timeout=30, app_dir=tmp_path):
            pass
    assert raised.value.reason == "exited"
    assert raised.value.failed_at.file == str(module) and raised.value.failed_at.line == 2
    assert "ImportError" in raised.value.failed_at.error
    assert any("ImportError" in line for line in raised.value.log_tail)


def test_serving_gives_up_at_the_deadline_and_stops_the_server():
    pids = []
    with pytest.raises(app_process.ServerNotReady) as raised:
        with app_process.serving(python_server("import time; time.sleep(60)"), start_timeout=1,
                                 on_start=lambda pid, port: pids.append(pid)):
            pass
    assert raised.value.reason == "deadline"
    assert group_is_gone(pids[0])


def test_serving_refuses_a_taken_port():
    with app_process.serving(python_server(HEALTHY), start_timeout=30) as first:
        with pytest.raises(app_process.ServerNotReady) as raised:
            with app_process.serving(python_server(HEALTHY), port=first.port):
                pass
    assert raised.value.reason == "port_taken"


# ---------------------------------------------------------------------------------------------------- the command, fake app


def fake_app(tmp_path: Path, with_input: bool = True) -> Path:
    """A working directory holding an app whose server is the fake one, and an input example."""
    workdir = tmp_path / "work"
    package = workdir / "fake-app" / "agent_server"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    shutil.copy(FAKE_SERVER, package / "start_server.py")
    if with_input:
        (workdir / "original_mlflow_model").mkdir()
        (workdir / "original_mlflow_model" / "input_example.json").write_text(json.dumps(REQUEST))
    return workdir


def smoke_fake(workdir: Path, behaviour: str, *extra: str) -> tuple[subprocess.CompletedProcess, dict | None]:
    env = {**os.environ, "FAKE_APP_BEHAVIOUR": behaviour}
    completed = run_migrate("smoke", "--workdir", str(workdir), "--python", sys.executable, "--start-timeout", "20",
                            *extra, env=env)
    report_path = workdir / "fake-app" / "migration" / "reports" / "smoke.json"
    return completed, (json.loads(report_path.read_text()) if report_path.exists() else None)


def codes(report: dict) -> set[str]:
    return {finding["code"] for finding in report["findings"]}


def started_pid(completed: subprocess.CompletedProcess) -> int | None:
    match = re.search(r"server started \(pid (\d+)", completed.stderr)
    return int(match.group(1)) if match else None


def test_smoke_passes_on_a_good_app_and_says_what_it_skipped(tmp_path):
    workdir = fake_app(tmp_path)
    completed, report = smoke_fake(workdir, "ok")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert report["status"] == "warning"
    assert codes(report) == {"SMK016"}  # no MLmodel next to the app: parity skipped, and said so
    body = report["payload"]["request"]["body"]
    assert body["custom_inputs"] == {"session": "s1"} and body["context"]["conversation_id"] == "migrate-smoke"
    assert report["payload"]["invoke"]["body"]["custom_outputs"] == {"session": "s1"}
    assert group_is_gone(started_pid(completed))
    assert {finding.code for finding in check_smoke(MigrationLayout.for_app(workdir / "fake-app"))} == {"SMK016"}


@pytest.mark.parametrize(("behaviour", "expected"), [
    ("agent_raises", {"SMK005", "SMK007"}),
    ("error_event", {"SMK009"}),
    ("malformed_sse", {"SMK008"}),
    ("bad_event", {"SMK008"}),
    ("no_done", {"SMK010"}),
    ("bad_response", {"SMK006"}),
    ("stream_differs", {"SMK011"}),
    ("import_error", {"SMK003"}),
    ("never_healthy", {"SMK003"}),
])
def test_each_bad_answer_is_its_finding_and_the_server_is_stopped(tmp_path, behaviour, expected):
    workdir = fake_app(tmp_path)
    extra = {"never_healthy": ("--start-timeout", "3"),
             # No workspace is configured here, so auto would compare by structure; this difference is in the text.
             "stream_differs": ("--parity", "exact")}.get(behaviour, ())
    completed, report = smoke_fake(workdir, behaviour, *extra)
    assert completed.returncode == 1, completed.stdout + completed.stderr
    assert expected <= codes(report), report["findings"]
    assert report["status"] == "error"
    assert "smoke: error" in completed.stdout
    assert group_is_gone(started_pid(completed))
    # The check reaches the same verdict from the recorded answers.
    assert expected <= {finding.code for finding in check_smoke(MigrationLayout.for_app(workdir / "fake-app"))}


def test_import_error_names_the_file_and_line(tmp_path):
    completed, report = smoke_fake(fake_app(tmp_path), "import_error")
    failed = report["payload"]["server"]["failed_at"]
    assert failed["file"].endswith("agent_server/start_server.py")
    assert "ModuleNotFoundError" in failed["error"]
    assert "start_server.py" in completed.stdout


def test_request_timeout_is_a_finding(tmp_path):
    completed, report = smoke_fake(fake_app(tmp_path), "hang", "--request-timeout", "1")
    assert completed.returncode == 1
    assert "SMK012" in codes(report)
    assert group_is_gone(started_pid(completed))


def test_taken_port_is_a_finding(tmp_path):
    with app_process.serving(python_server(HEALTHY), start_timeout=30) as other:
        completed, report = smoke_fake(fake_app(tmp_path), "ok", "--port", str(other.port))
    assert completed.returncode == 1
    assert "SMK004" in codes(report)


def test_missing_input_example_falls_back_to_a_minimal_request(tmp_path):
    completed, report = smoke_fake(fake_app(tmp_path, with_input=False), "ok")
    assert completed.returncode == 0
    assert "SMK001" in codes(report)
    assert report["payload"]["request"]["source"] == "minimal"


def test_bad_input_file_is_an_error(tmp_path):
    workdir = fake_app(tmp_path)
    (tmp_path / "bad.json").write_text("[1, 2]")
    completed, report = smoke_fake(workdir, "ok", "--input", str(tmp_path / "bad.json"))
    assert completed.returncode == 1 and "[SMK002]" in completed.stderr
    assert report is None


def test_ctrl_c_stops_the_server(tmp_path):
    workdir = fake_app(tmp_path)
    env = {**os.environ, "FAKE_APP_BEHAVIOUR": "never_healthy"}
    process = subprocess.Popen([sys.executable, "-m", "scripts.cli", "smoke", "--workdir", str(workdir), "--python",
                                sys.executable, "--start-timeout", "60"], cwd=REPO, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = ""
    deadline = time.monotonic() + 60
    while "server started" not in line and time.monotonic() < deadline:
        line = process.stderr.readline()
    pid = int(re.search(r"pid (\d+)", line).group(1))
    assert not group_is_gone(pid)
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=30) == 130
    assert group_is_gone(pid)


def test_sigterm_stops_the_server_too(tmp_path):
    workdir = fake_app(tmp_path)
    env = {**os.environ, "FAKE_APP_BEHAVIOUR": "never_healthy"}
    process = subprocess.Popen([sys.executable, "-m", "scripts.cli", "smoke", "--workdir", str(workdir), "--python",
                                sys.executable, "--start-timeout", "60"], cwd=REPO, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = ""
    deadline = time.monotonic() + 60
    while "server started" not in line and time.monotonic() < deadline:
        line = process.stderr.readline()
    pid = int(re.search(r"pid (\d+)", line).group(1))
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)
    assert group_is_gone(pid)


# `migrate` in its own process, with the grace between SIGTERM and SIGKILL shortened from 5 s to 1 s: a server
# that ignores SIGTERM is then killed after 1 s, which proves the SIGKILL comes as well as 5 s of waiting does.
MIGRATE_WITH_A_SHORT_GRACE = ("import sys; from scripts import processes; processes.STOP_GRACE_SECONDS = 1.0; "
                              "from scripts.cli import main; sys.exit(main(sys.argv[1:]))")


def test_ctrl_c_twice_during_cleanup_still_kills_a_server_that_ignores_sigterm(tmp_path):
    """Issue 14: two Ctrl-C 1 s apart while the agent hangs left the app server orphaned, holding its port."""
    workdir = fake_app(tmp_path)
    marker = tmp_path / "request-received"
    env = {**os.environ, "FAKE_APP_BEHAVIOUR": "hang_ignoring_sigterm", "FAKE_APP_MARKER": str(marker)}
    process = subprocess.Popen([sys.executable, "-c", MIGRATE_WITH_A_SHORT_GRACE, "smoke", "--workdir", str(workdir),
                                "--python", sys.executable, "--start-timeout", "60", "--parity", "off"], cwd=REPO,
                               env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    pid = None
    try:
        line = ""
        deadline = time.monotonic() + 60
        while "server started" not in line and time.monotonic() < deadline:
            line = process.stderr.readline()
        pid, port = map(int, re.search(r"server started \(pid (\d+), port (\d+)", line).groups())
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert marker.exists()
        process.send_signal(signal.SIGINT)
        time.sleep(0.3)  # inside the 1 s grace
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 130
        assert group_is_gone(pid)
        # Nothing listens on the port any more (a bind may still wait out TIME_WAIT of the cut connection).
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0
    finally:
        process.kill()
        if pid is not None and not group_is_gone(pid):
            os.killpg(pid, signal.SIGKILL)


# ---------------------------------------------------------------------------------------------------- the check


def test_check_recomputes_from_the_record_and_notices_changed_code(tmp_path):
    workdir = fake_app(tmp_path)
    completed, _ = smoke_fake(workdir, "ok")
    assert completed.returncode == 0
    layout = MigrationLayout.for_app(workdir / "fake-app")
    assert not [finding for finding in check_smoke(layout) if finding.severity == "error"]

    report = json.loads(layout.report_path("smoke").read_text())
    report["payload"]["invoke"]["body"]["output"][0]["content"] = []  # a recorded answer that was never valid
    layout.report_path("smoke").write_text(json.dumps(report))
    assert "SMK006" in {finding.code for finding in check_smoke(layout)}

    (layout.root / "agent_server" / "start_server.py").write_text("# changed\n")
    assert "SMK023" in {finding.code for finding in check_smoke(layout)}

    checked = run_migrate("check", "smoke", "--app", str(layout.root), "--workdir", str(workdir))
    assert checked.returncode == 1 and "SMK006" in checked.stdout


def payload_with(original_invoke: dict, original_stream: list, comparison: str = "exact") -> dict:
    item = {"type": "message", "id": "m1", "role": "assistant", "content": [{"type": "output_text", "text": "hi"}]}
    stream_text = f"data: {json.dumps({'type': 'response.output_item.done', 'item': item})}\n\ndata: [DONE]\n\n"
    return {"target": "local", "comparison": comparison, "url": None, "agent_files": {},
            "request": {"source": "x.json", "body": REQUEST},
            "server": {"command": [], "health": "ok", "message": None, "log_tail": [], "failed_at": None},
            "invoke": {"status_code": 200, "error": None, "body": {"output": [item], "custom_outputs": {"a": 1}}},
            "stream": {"status_code": 200, "error": None, "text": stream_text},
            "parity": {"status": "ran", "reason": None, "error": None,
                       "original": {"invoke": original_invoke, "stream": original_stream}}}


def test_parity_findings_show_the_first_difference():
    item = {"type": "message", "id": "other-id", "role": "assistant",
            "content": [{"type": "output_text", "text": "hi"}]}
    same = payload_with({"output": [item], "custom_outputs": {"a": 1}},
                        [{"type": "response.output_item.done", "item": item}])
    assert smoke_findings(same, "app") == []

    dropped = payload_with({"output": [item], "custom_outputs": {"a": 2}},
                           [{"type": "response.output_item.done", "item": item}])
    [finding] = smoke_findings(dropped, "app")
    assert finding.code == "SMK013" and "$.custom_outputs.a" in finding.message

    changed = {**item, "content": [{"type": "output_text", "text": "hello"}]}
    differs = payload_with({"output": [item], "custom_outputs": {"a": 1}},
                           [{"type": "response.output_item.done", "item": changed}])
    assert {finding.code for finding in smoke_findings(differs, "app")} == {"SMK014"}
    # A real workspace's text varies: structure only, and it says so.
    structure = payload_with({"output": [changed], "custom_outputs": {"a": 9}},
                             [{"type": "response.output_item.done", "item": changed}], comparison="structure")
    assert {finding.code for finding in smoke_findings(structure, "app")} == {"SMK017"}


def test_original_that_fails_is_a_finding():
    payload = payload_with({}, [])
    payload["parity"] = {"status": "failed", "reason": None, "error": "ModuleNotFoundError: openai", "original": None}
    [finding] = smoke_findings(payload, "app")
    assert finding.code == "SMK015" and "openai" in finding.message


# ---------------------------------------------------------------------------------------------------- deployed, fake app


def test_deployed_redirect_to_login_says_how_to_sign_in(tmp_path, standin_workspace):
    workdir = fake_app(tmp_path)
    env = {**standin_workspace.environ(), "FAKE_APP_BEHAVIOUR": "redirect"}
    command = app_process.ServerCommand(
        lambda port: [sys.executable, str(FAKE_SERVER), "--port", str(port)], workdir, env)
    with app_process.serving(command, start_timeout=30) as app:
        completed = run_migrate("smoke", "--url", app.url, "--workdir", str(workdir), "--parity", "off", env=env)
    assert completed.returncode == 1
    report = json.loads((workdir / "fake-app" / "migration" / "reports" / "smoke.json").read_text())
    assert "SMK020" in codes(report)
    assert "databricks auth login" in completed.stdout
    assert report["payload"]["invoke"]["location"].startswith("https://example.cloud.databricks.com/login")


def test_deployed_app_found_by_name(tmp_path, standin_workspace):
    workdir = fake_app(tmp_path)
    env = {**standin_workspace.environ(), "FAKE_APP_BEHAVIOUR": "ok"}
    command = app_process.ServerCommand(
        lambda port: [sys.executable, str(FAKE_SERVER), "--port", str(port)], workdir, env)
    with app_process.serving(command, start_timeout=30) as app:
        standin_workspace.add_app("fake-deployed", url=app.url)
        completed = run_migrate("smoke", "--app-name", "fake-deployed", "--workdir", str(workdir), "--parity", "off",
                                env=env)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    report = json.loads((workdir / "fake-app" / "migration" / "reports" / "smoke.json").read_text())
    assert report["payload"]["target"] == "deployed" and report["payload"]["url"] == app.url


def test_deployed_unknown_app_name_is_an_error(tmp_path, standin_workspace):
    completed = run_migrate("smoke", "--app-name", "no-such-app", "--workdir", str(fake_app(tmp_path)),
                            env=standin_workspace.environ())
    assert completed.returncode == 1 and "[SMK022]" in completed.stderr


# ---------------------------------------------------------------------------------------------------- e2e: real apps


@pytest.fixture(scope="module")
def migrated_apps(downloaded_example, standin_workspace):
    """`migrated_apps(mode)`: examples/openai_tools downloaded, scaffolded and migrated in `mode`."""
    built: dict[str, Path] = {}

    def build(mode: str) -> Path:
        if mode not in built:
            workdir = downloaded_example("openai_tools")
            env = standin_workspace.environ()
            for argv in (["analyze"], ["scaffold", "--app-name", f"oa-{mode}"], ["code", "--mode", mode]):
                completed = run_migrate(*argv, "--workdir", str(workdir), env=env)
                assert completed.returncode == 0, completed.stdout + completed.stderr
            built[mode] = workdir
        return built[mode]

    return build


def smoke_migrated(workdir: Path, app: Path, env: dict) -> tuple[subprocess.CompletedProcess, dict]:
    completed = run_migrate("smoke", "--workdir", str(workdir), "--app", str(app), "--python", sys.executable,
                            env=env)
    return completed, json.loads((app / "migration" / "reports" / "smoke.json").read_text())


@pytest.mark.e2e
def test_without_python_the_app_runs_from_its_own_uv_environment(migrated_apps, standin_workspace, tmp_path):
    """What a user runs: `uv run start-server` in the app, with the dependencies `migrate setup` locked."""
    workdir = tmp_path / "work"
    shutil.copytree(migrated_apps("sync"), workdir)
    app = workdir / "oa-sync"
    env = standin_workspace.environ()
    setup = run_migrate("setup", "--workdir", str(workdir), "--app", str(app), env=env)
    assert setup.returncode == 0, setup.stdout + setup.stderr
    completed = run_migrate("smoke", "--workdir", str(workdir), "--app", str(app), env=env)
    report = json.loads((app / "migration" / "reports" / "smoke.json").read_text())
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert report["payload"]["server"]["command"][-6:-4] == ["run", "start-server"]
    assert (app / ".venv" / "bin" / "start-server").is_file()  # uv built the app's own environment
    assert report["payload"]["parity"]["status"] == "ran" and report["status"] == "ok"


CARRIED = "return ResponsesAgentResponse(output=outputs, custom_outputs=request.custom_inputs)"


@pytest.mark.e2e
def test_async_migration_parity_catches_lost_custom_outputs(migrated_apps, standin_workspace):
    """`migrate code --mode async` carries the custom_outputs predict returned into the invoke (COD009):
    without them parity fails and names the path. (With them and the conversion done the async app answers
    like the original: the demo's async app, tests/test_demo.py.)"""
    workdir = migrated_apps("async")
    app = workdir / "oa-async"
    entry = app / "agent_server" / "agent.py"
    generated = entry.read_text()
    assert generated.count(CARRIED) == 1
    entry.write_text(generated.replace(CARRIED, "return ResponsesAgentResponse(output=outputs)"))
    completed, report = smoke_migrated(workdir, app, standin_workspace.environ())
    assert completed.returncode == 1
    [parity] = [finding for finding in report["findings"] if finding["code"] == "SMK013"]
    assert "$.custom_outputs" in parity["message"]
    assert group_is_gone(started_pid(completed))


@pytest.mark.e2e
def test_migrated_example_deployed_smoke(migrated_apps, standin_workspace):
    workdir = migrated_apps("sync")
    env = standin_workspace.environ()
    command = app_process.ServerCommand(
        lambda port: [sys.executable, "-m", "agent_server.start_server", "--host", "127.0.0.1", "--port", str(port)],
        workdir / "oa-sync", env)
    with app_process.serving(command) as app:
        standin_workspace.add_app("oa-sync", url=app.url)
        completed = run_migrate("smoke", "--app-name", "oa-sync", "--app", str(workdir / "oa-sync"),
                                "--workdir", str(workdir), env=env)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    report = json.loads((workdir / "oa-sync" / "migration" / "reports" / "smoke.json").read_text())
    assert report["payload"]["target"] == "deployed" and report["payload"]["parity"]["status"] == "ran"


@pytest.mark.e2e
def test_missing_workspace_settings_stop_the_real_app_at_import(migrated_apps, tmp_path):
    """No DATABRICKS_HOST/TOKEN and no config file: the agent's WorkspaceClient() fails at import; the finding
    names agent_server/agent.py and its line, and the server is gone."""
    import standin

    workdir = migrated_apps("sync")
    env = {key: value for key, value in os.environ.items() if key not in standin.WORKSPACE_VARIABLES}
    env["HOME"] = str(tmp_path)  # no ~/.databrickscfg to fall back on
    completed = run_migrate("smoke", "--workdir", str(workdir), "--app", str(workdir / "oa-sync"), "--python",
                            sys.executable, "--parity", "off", env=env)
    assert completed.returncode == 1
    report = json.loads((workdir / "oa-sync" / "migration" / "reports" / "smoke.json").read_text())
    assert "SMK003" in codes(report)
    failed = report["payload"]["server"]["failed_at"]
    assert failed["file"].endswith("oa-sync/agent_server/agent.py"), failed
    assert "agent_server/agent.py" in completed.stdout
    assert group_is_gone(started_pid(completed))


RAISING_AGENT = '''
from mlflow.genai.agent_server import invoke, stream
from mlflow.types.responses import ResponsesAgentResponse, ResponsesAgentStreamEvent


ITEM = {"type": "message", "id": "m1", "role": "assistant", "content": [{"type": "output_text", "text": "half"}]}


@invoke()
async def handle(request):
    raise RuntimeError("the agent broke")


@stream()
async def handle_stream(request):
    yield ResponsesAgentStreamEvent(type="response.output_item.done", item=ITEM)
    raise RuntimeError("the agent broke mid-stream")
'''


@pytest.mark.e2e
def test_real_agent_server_error_mid_stream_is_caught(tmp_path, standin_workspace):
    package = tmp_path / "work" / "raising-app" / "agent_server"
    package.mkdir(parents=True)
    for name in ("__init__.py", "start_server.py"):
        shutil.copy(REPO / "agent_server" / name, package / name)
    (package / "agent.py").write_text(RAISING_AGENT)
    completed = run_migrate("smoke", "--workdir", str(tmp_path / "work"), "--python", sys.executable,
                            env=standin_workspace.environ())
    assert completed.returncode == 1
    report = json.loads((package.parent / "migration" / "reports" / "smoke.json").read_text())
    assert {"SMK005", "SMK009"} <= codes(report)
    assert report["payload"]["stream"]["status_code"] == 200  # the error came after a 200
    assert group_is_gone(started_pid(completed))


@pytest.mark.parametrize("env, profile, expected", [
    ({"DATABRICKS_HOST": "http://127.0.0.1:8123"}, None, "exact"),
    ({"DATABRICKS_HOST": "https://adb-1.azuredatabricks.net"}, None, "structure"),
    ({"DATABRICKS_CONFIG_PROFILE": "standin"}, None, "exact"),   # a profile-only setup, as AGENTS.md asks for
    ({}, "standin", "exact"),
    ({}, "prod", "structure"),
    ({}, None, "structure"),                                     # DEFAULT points at the real workspace
    ({"DATABRICKS_CONFIG_PROFILE": "missing"}, None, "structure"),
])
def test_parity_auto_compares_exactly_only_against_a_workspace_on_this_machine(tmp_path, env, profile, expected):
    from scripts.smoke import comparison_mode

    config = tmp_path / "databrickscfg"
    config.write_text("[DEFAULT]\nhost = https://adb-1.azuredatabricks.net\n\n"
                      "[standin]\nhost = http://localhost:9000\ntoken = t\n\n"
                      "[prod]\nhost = https://dbc-2.cloud.databricks.com\n")
    assert comparison_mode("auto", {**env, "DATABRICKS_CONFIG_FILE": str(config)}, profile) == expected
    assert comparison_mode("exact", {}, None) == "exact"


# ---------------------------------------------------------------------------------------------------- ChatAgent sources

CHAT_CORPUS = Path(__file__).parent / "fixtures" / "agents"


def test_a_chat_agent_example_is_sent_as_input_and_the_original_gets_it_as_is(tmp_path):
    from scripts.smoke import smoke_request

    layout = MigrationLayout.for_app(tmp_path / "app")
    example = {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
               "custom_inputs": {"thread_id": "t1"}}
    (tmp_path / "original_mlflow_model").mkdir()
    (tmp_path / "original_mlflow_model" / "input_example.json").write_text(json.dumps(example))
    request, source, original_request = smoke_request(layout, None)
    assert request["input"] == example["messages"] and request["custom_inputs"] == {"thread_id": "t1"}
    assert "messages" not in request and "ChatAgent messages sent as input" in source
    assert original_request["messages"] == example["messages"] and original_request["context"] == request["context"]


def test_a_chat_message_the_app_cannot_take_as_input_is_refused_with_the_fix(tmp_path, capsys):
    from scripts.core.errors import MigrateError
    from scripts.smoke import smoke_request

    (tmp_path / "original_mlflow_model").mkdir()
    (tmp_path / "original_mlflow_model" / "input_example.json").write_text(json.dumps(
        {"messages": [{"role": "tool", "content": "42", "tool_call_id": "c1"}]}))
    with pytest.raises(MigrateError) as refused:
        smoke_request(MigrationLayout.for_app(tmp_path / "app"), None)
    assert refused.value.code == "SMK002" and "--input" in refused.value.fix


def test_a_chat_agent_original_is_compared_through_the_adapter():
    from checks.smoke import original_as_responses

    answer = {"messages": [{"role": "assistant", "content": "Paris", "id": "m1"}], "custom_outputs": {"k": 1}}
    chunks = [{"delta": {"role": "assistant", "content": "Par", "id": "m1"}},
              {"delta": {"role": "assistant", "content": "is", "id": "m1"}}]
    converted = original_as_responses({"format": "chat_agent", "invoke": answer, "stream": chunks})
    assert converted["invoke"]["output"][0]["content"][0]["text"] == "Paris"
    assert converted["invoke"]["custom_outputs"] == {"k": 1}
    assert [event["type"] for event in converted["stream"]] == [
        "response.output_text.delta", "response.output_text.delta", "response.output_item.done"]
    for event in converted["stream"]:
        assert validation_errors(event, "responses_agent_stream_event") == []
    without_stream = original_as_responses({"format": "chat_agent", "invoke": answer, "stream": None})
    assert [event["type"] for event in without_stream["stream"]] == ["response.output_item.done"]
    responses = {"format": "responses", "invoke": {"output": []}, "stream": []}
    assert original_as_responses(responses) is responses



@pytest.mark.e2e
@pytest.mark.parametrize("agent", ["chat_agent", "chat_agent_stream"])
def test_a_migrated_chat_agent_answers_like_the_original(agent, standin_workspace, tmp_path):
    workdir = tmp_path / "work"
    shutil.copytree(CHAT_CORPUS / agent, workdir / "original_mlflow_model")
    (workdir / "migration" / "source").mkdir(parents=True)
    env = standin_workspace.environ()
    for argv in (["analyze"], ["scaffold", "--app-name", "chat-app"], ["code", "--mode", "sync"]):
        completed = run_migrate(*argv, "--workdir", str(workdir), env=env)
        assert completed.returncode == 0, completed.stdout + completed.stderr
    app = workdir / "chat-app"
    completed, report = smoke_migrated(workdir, app, env)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert report["payload"]["parity"]["status"] == "ran" and report["payload"]["comparison"] == "exact"
    assert report["payload"]["parity"]["original"]["format"] == "chat_agent"

    # The comparison can fail: an app whose answer carries other custom_outputs is caught.
    adapter = app / "agent_server" / "chat_agent_adapter.py"
    text = adapter.read_text()
    assert text.count("custom_outputs=response.custom_outputs)") == 1
    adapter.write_text(text.replace("custom_outputs=response.custom_outputs)", 'custom_outputs={"changed": True})'))
    completed, report = smoke_migrated(workdir, app, env)
    assert completed.returncode == 1
    assert "SMK013" in {finding["code"] for finding in report["findings"]}, report["findings"]


# ---------------------------------------------------------------------------------------------------- the original, once


def test_the_original_answers_once_per_unchanged_original_request_and_workspace(tmp_path, monkeypatch):
    """The original runs in its own interpreter; a second smoke of the same original and request reuses its
    answer, and a changed original file, request or workspace setting runs it again."""
    from scripts.smoke_original import OriginalRun

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("DATABRICKS_HOST", "http://127.0.0.1:9")
    runs = tmp_path / "runs.log"
    python = tmp_path / "python"  # stands in for the app's interpreter: `python -c RUNNER MODEL REQUEST OUTPUT`
    python.write_text(f'#!/bin/sh\necho run >> "{runs}"\n'
                      'printf \'{"format": "responses", "invoke": {"output": []}, "stream": []}\' > "$5"\n')
    python.chmod(0o755)
    workdir = fake_app(tmp_path)
    (workdir / "original_mlflow_model" / "MLmodel").write_text("flavors: {}\n")
    layout = MigrationLayout.for_app(workdir / "fake-app")

    def answer(request: dict) -> dict:
        with OriginalRun(layout, request, python) as original:
            return original.answer()

    expected = {"format": "responses", "invoke": {"output": []}, "stream": []}
    assert answer(REQUEST) == expected and runs.read_text().count("run") == 1
    assert answer(REQUEST) == expected and runs.read_text().count("run") == 1, "the original ran again"
    assert answer({**REQUEST, "input": []}) == expected and runs.read_text().count("run") == 2
    (workdir / "original_mlflow_model" / "MLmodel").write_text("flavors: {python_function: {}}\n")
    assert answer(REQUEST) == expected and runs.read_text().count("run") == 3
    monkeypatch.setenv("DATABRICKS_HOST", "http://127.0.0.1:10")
    assert answer(REQUEST) == expected and runs.read_text().count("run") == 4
    # Another app of the same original, whose traces go to its own experiment, gets the same answer.
    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", "4000000000000002")
    assert answer(REQUEST) == expected and runs.read_text().count("run") == 4, "the experiment changed the key"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:11")  # where prompts and models may be read from
    assert answer(REQUEST) == expected and runs.read_text().count("run") == 5


def test_two_runs_asking_the_same_at_once_load_the_original_once(tmp_path, monkeypatch):
    """The demo smokes its two apps side by side: the second run waits for the first one's answer instead of
    loading the original too, and runs the original itself when the first one's answer was not remembered."""
    from scripts.smoke_original import OriginalRun

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    runs = tmp_path / "runs.log"
    python = tmp_path / "python"
    python.write_text(f'#!/bin/sh\necho run >> "{runs}"\n'
                      f'if [ -e "{tmp_path}/fail" ]; then exit 1; fi\n'
                      'printf \'{"format": "responses", "invoke": {"output": []}, "stream": []}\' > "$5"\n')
    python.chmod(0o755)
    workdir = fake_app(tmp_path)
    (workdir / "original_mlflow_model" / "MLmodel").write_text("flavors: {}\n")
    layout = MigrationLayout.for_app(workdir / "fake-app")

    with OriginalRun(layout, REQUEST, python) as first, OriginalRun(layout, REQUEST, python) as second:
        assert first.answer()["invoke"] == {"output": []}
        assert second.answer()["invoke"] == {"output": []}
    assert runs.read_text().count("run") == 1, "both runs loaded the original"

    other = {**REQUEST, "input": []}
    fail = tmp_path / "fail"  # the first one's original exits 1 ...
    fail.touch()
    with OriginalRun(layout, other, python) as first, OriginalRun(layout, other, python) as second:
        assert "error" in first.answer()
        fail.unlink()
        assert second.answer()["invoke"] == {"output": []}  # ... so the second runs it itself
    assert runs.read_text().count("run") == 3


def test_replays_answers_are_remembered_only_when_every_request_was_answered(tmp_path, monkeypatch):
    """Replay asks the original a list of requests at once; a list holding an error (a workspace that did
    not answer) runs again next time, a list without one is reused."""
    from scripts.smoke_original import OriginalRun

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    runs = tmp_path / "runs.log"
    python = tmp_path / "python"
    python.write_text(f'#!/bin/sh\necho run >> "{runs}"\n'
                      'if grep -q fails "$4"; then printf \'[{"error": "ConnectionError: no workspace"}]\' > "$5"; '
                      'else printf \'[{"format": "responses", "invoke": {"output": []}, "stream": []}]\' > "$5"; fi\n')
    python.chmod(0o755)
    workdir = fake_app(tmp_path)
    (workdir / "original_mlflow_model" / "MLmodel").write_text("flavors: {}\n")
    layout = MigrationLayout.for_app(workdir / "fake-app")

    def answers(requests: list[dict]) -> list[dict]:
        with OriginalRun(layout, requests, python, many=True) as original:
            return original.answer()

    failing = [{**REQUEST, "input": [{"role": "user", "content": "fails"}]}]
    assert "error" in answers(failing)[0] and runs.read_text().count("run") == 1
    assert "error" in answers(failing)[0] and runs.read_text().count("run") == 2, "an error was remembered"
    assert answers([REQUEST])[0]["invoke"] == {"output": []} and runs.read_text().count("run") == 3
    assert answers([REQUEST])[0]["invoke"] == {"output": []} and runs.read_text().count("run") == 3


def test_servers_keep_compiled_modules_in_the_cache_folder_not_in_the_app(tmp_path):
    """With PYTHONDONTWRITEBYTECODE set, each start of the app or the original compiled every module again;
    smoke's children keep them in the user's cache folder instead, and nothing lands in the app."""
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "agent_module.py").write_text("VALUE = 1\n")
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "XDG_CACHE_HOME": str(tmp_path / "cache")}
    env.pop("PYTHONPYCACHEPREFIX", None)
    child = app_process.with_compiled_modules(env)
    assert "PYTHONDONTWRITEBYTECODE" not in child
    assert child["PYTHONPYCACHEPREFIX"] == str(tmp_path / "cache" / "agent-migrate" / "pycache")
    subprocess.run([sys.executable, "-c", "import agent_module"], cwd=tmp_path / "app", env=child, check=True)
    assert list((tmp_path / "cache" / "agent-migrate" / "pycache").rglob("agent_module*.pyc"))
    assert not list((tmp_path / "app").rglob("*.pyc"))
    # A prefix the user chose, or no PYTHONDONTWRITEBYTECODE at all, is left as it is.
    assert app_process.with_compiled_modules({**env, "PYTHONPYCACHEPREFIX": "/x"})["PYTHONPYCACHEPREFIX"] == "/x"
    assert app_process.with_compiled_modules({"PATH": "/bin"}) == {"PATH": "/bin"}


def test_local_runs_read_mlflows_model_catalog_from_its_package_unless_the_user_chose_one():
    """Offline, MLflow's first traced LLM call in each process retried the catalog's download for ~8 s."""
    assert app_process.local_run_environment({"PATH": "/bin"})["MLFLOW_MODEL_CATALOG_URI"] == ""
    chosen = {"PATH": "/bin", "MLFLOW_MODEL_CATALOG_URI": "file:///mirror"}
    assert app_process.local_run_environment(chosen)["MLFLOW_MODEL_CATALOG_URI"] == "file:///mirror"
