"""`migrate replay`'s bad inputs, each a finding with its fix, against the session's stand-in; the replay set's
translation, de-duplication and privacy; the replay check; and `migrate check` without a replay report.

No MLflow interpreter starts here: the app is never served (the end-to-end replay is in tests/test_demo.py).
"""

from __future__ import annotations

import argparse
import json
import shutil
import stat
from pathlib import Path

import pytest

from checks.replay import check_replay
from scripts import replay, replay_demo, replay_set
from scripts.core.errors import MigrateError
from scripts.core.findings import Finding
from scripts.core.layout import MigrationLayout
from scripts.core.reports import StepReport, write_report

EXAMPLE_REQUEST = {"input": [{"role": "user", "content": "Use word_count on: the quick brown fox"}],
                   "custom_inputs": {"session": "demo"}}
ENDPOINT = "replay-test-endpoint"


def app_layout(tmp_path: Path) -> MigrationLayout:
    app = tmp_path / "work" / "replay-app"
    (app / "agent_server").mkdir(parents=True, exist_ok=True)
    (app / "agent_server" / "agent.py").write_text("ANSWER = 1\n")
    return MigrationLayout.for_app(app)


def arguments(**overrides) -> argparse.Namespace:
    values = dict(app=None, warehouse_id=replay_demo.WAREHOUSE_ID, endpoint=ENDPOINT, profile=None, limit=50,
                  since=None, served_entity_id=None, keep_responses=False, parity="auto", python=None, port=None,
                  start_timeout=5.0, request_timeout=5.0)
    return argparse.Namespace(**{**values, **overrides})


@pytest.fixture
def workspace(standin_workspace, monkeypatch):
    """The session stand-in as this process's workspace, serving ENDPOINT with the demo's logged traffic."""
    for key, value in standin_workspace.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("DATABRICKS_CONFIG_PROFILE", raising=False)
    registered = {"name": "main.agents.replay_test", "version": "1"}
    import standin

    standin_workspace.add_payload_table(replay_demo.payload_table(ENDPOINT), replay_demo.logged_rows(EXAMPLE_REQUEST))
    standin_workspace.add_endpoint(standin.endpoint_json(
        ENDPOINT, registered["name"], "1", ai_gateway=replay_demo_config()))
    yield standin_workspace
    standin_workspace.add_endpoint(standin.endpoint_json(ENDPOINT, registered["name"], "1",
                                                         ai_gateway=replay_demo_config()))
    standin_workspace.set_warehouse(replay_demo.WAREHOUSE_ID, "RUNNING")


def replay_demo_config(enabled: bool = True) -> dict:
    from standin.inference_tables import inference_table_config

    return inference_table_config(replay_demo.CATALOG, replay_demo.SCHEMA, replay_demo.table_prefix(ENDPOINT),
                                  enabled)


def refused(tmp_path, **overrides) -> MigrateError:
    with pytest.raises(MigrateError) as error:
        replay.gather(app_layout(tmp_path), arguments(**overrides))
    assert error.value.fix
    return error.value


# ------------------------------------------------------------------------------------------------ the set


def test_the_demo_traffic_becomes_a_set_of_distinct_successful_requests_kept_private(workspace, tmp_path):
    layout = app_layout(tmp_path)
    logged, source = replay.gather(layout, arguments())
    # Five rows logged: one failed (status 500, left out by the query), one a duplicate.
    assert source["set"]["rows_read"] == 4 and source["set"]["duplicates"] == 1
    assert [request.format for request in logged.requests] == ["dataframe_records", "responses", "responses"]
    older = logged.requests[0]
    assert older.app_request == older.original_request and "input" in older.app_request
    assert all("stream" not in request.app_request for request in logged.requests)
    path = layout.workdir / source["set"]["path"]
    assert path.is_file() and layout.root not in path.parents
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "*" in (layout.workdir / ".replay" / ".gitignore").read_text().splitlines()
    assert all(request.response is None for request in logged.requests)  # responses only with --keep-responses


def test_chat_agent_messages_and_dataframe_split_are_translated_and_odd_rows_skipped():
    messages = {"messages": [{"role": "user", "content": "hi"}], "custom_inputs": {"a": 1}}
    rows = [{"databricks_request_id": "m", "request": json.dumps(messages)},
            {"databricks_request_id": "s", "request": json.dumps(
                {"dataframe_split": {"columns": ["input"], "data": [[[{"role": "user", "content": "yo"}]]]}})},
            {"databricks_request_id": "two", "request": json.dumps({"dataframe_records": [{}, {}]})},
            {"databricks_request_id": "bad", "request": "{not json"},
            {"databricks_request_id": "list", "request": "[1, 2]"}]
    built = replay_set.build_set(rows, 10, False, "app")
    by_id = {request.id: request for request in built.requests}
    assert by_id["m"].format == "messages" and by_id["m"].original_request == messages
    assert by_id["m"].app_request == {"input": [{"role": "user", "content": "hi"}], "custom_inputs": {"a": 1}}
    assert by_id["s"].app_request == {"input": [{"role": "user", "content": "yo"}]}
    assert built.skipped == 3
    codes = {finding.path.split()[-1]: finding.code for finding in built.findings}
    assert codes == {"two": "RPL008", "bad": "RPL006", "list": "RPL006"}
    assert all("{not json" not in finding.message for finding in built.findings)  # never a body


def test_kept_responses_lose_the_serving_trace():
    response = {"object": "response", "output": [], "databricks_output": {"trace": {"x": 1}}}
    rows = [{"databricks_request_id": "r", "request": json.dumps(EXAMPLE_REQUEST), "response": json.dumps(response)}]
    assert replay_set.build_set(rows, 1, True, "app").requests[0].response == {"object": "response", "output": []}


# ------------------------------------------------------------------------------------------------ bad inputs


def test_no_inference_table_configured(workspace, tmp_path):
    import standin

    workspace.add_endpoint(standin.endpoint_json(ENDPOINT, "main.agents.replay_test", "1"))
    error = refused(tmp_path)
    assert error.code == "RPL001" and "inference table" in error.fix
    workspace.add_endpoint(standin.endpoint_json(ENDPOINT, "main.agents.replay_test", "1",
                                                 ai_gateway=replay_demo_config(enabled=False)))
    assert refused(tmp_path).code == "RPL001"


def test_warehouse_unreachable(workspace, tmp_path):
    workspace.set_warehouse(replay_demo.WAREHOUSE_ID, "DELETED")
    error = refused(tmp_path)
    assert error.code == "RPL003" and "warehouses list" in error.fix


def test_table_missing(workspace, tmp_path):
    import standin

    config = replay_demo_config()
    config["inference_table_config"]["table_name_prefix"] = "never_logged"
    workspace.add_endpoint(standin.endpoint_json(ENDPOINT, "main.agents.replay_test", "1", ai_gateway=config))
    error = refused(tmp_path)
    assert error.code == "RPL004" and "main.agents.never_logged_payload" in error.message


def test_malformed_logged_json_only(workspace, tmp_path):
    workspace.add_payload_table(replay_demo.payload_table(ENDPOINT), [
        {"databricks_request_id": "x", "request_time": "2026-11-30T10:00:00Z", "status_code": 200,
         "request": "{\"input\": [", "served_entity_id": "e"}])
    error = refused(tmp_path)
    assert error.code == "RPL007" and "1 of them unusable" in error.message


def test_zero_rows(workspace, tmp_path):
    error = refused(tmp_path, since="2030-01-01T00:00:00Z")
    assert error.code == "RPL007" and "since 2030" in error.message and "--since" in error.fix


def test_an_endpoint_the_download_did_not_name_must_be_given(tmp_path):
    error = refused(tmp_path, endpoint=None)
    assert error.code == "RPL002" and "--endpoint" in error.fix


# ------------------------------------------------------------------------------------------------ the check


def replay_report(layout: MigrationLayout, statuses=("agreed", "agreed"), findings=()) -> dict:
    from checks.smoke import agent_file_hashes
    from scripts.replay_compare import totals

    requests = [{"id": f"r{index}", "format": "responses", "status": status, "part": None if status == "agreed"
                 else "invoke", "difference": None if status == "agreed" else {"path": "$", "expected": "a",
                                                                               "actual": "b"},
                 "error": None, "app_seconds": 0.1, "original_seconds": 0.1, "original_error": None,
                 "logged_ms": 100.0, "compared_with": ["original"]} for index, status in enumerate(statuses)]
    report = StepReport("replay", inputs={"endpoint": ENDPOINT, "payload_table": "a.b.c_payload", "warehouse_id": "w",
                                          "since": None, "served_entity_id": None, "limit": 50,
                                          "keep_responses": False, "app": "replay-app", "parity": "auto",
                                          "python": None})
    report.findings = list(findings)
    report.payload = {"comparison": "exact", "server": {"command": None, "health": "ok", "message": None,
                                                        "log_tail": []},
                      "set": {"path": ".replay/replay-app/replay-set.jsonl", "sha256": "0" * 64, "rows_read": 2,
                              "duplicates": 0, "skipped": 0, "requests": len(statuses)},
                      "original": {"status": "ran", "reason": None, "error": None},
                      "agent_files": agent_file_hashes(layout.root), "totals": totals(requests),
                      "requests": requests}
    write_report(layout, report)
    return report.payload


def test_the_check_passes_a_report_that_adds_up_and_catches_what_changed(tmp_path):
    layout = app_layout(tmp_path)
    replay_report(layout)
    assert check_replay(layout) == []
    (layout.root / "agent_server" / "agent.py").write_text("ANSWER = 2\n")
    assert [finding.code for finding in check_replay(layout)] == ["RPL020"]


def test_the_check_catches_edited_counts_and_an_error_edited_away(tmp_path):
    layout = app_layout(tmp_path)
    replay_report(layout, statuses=("agreed", "differed"))
    findings = check_replay(layout)
    assert [finding.code for finding in findings] == ["RPL021"] and "carries no error" in findings[0].message
    path = layout.report_path("replay")
    document = json.loads(path.read_text())
    document["payload"]["totals"]["agreed"] = 2
    path.write_text(json.dumps(document))
    assert any("totals say 2 agreed" in finding.message for finding in check_replay(layout))


def test_a_replay_set_inside_the_app_fails_the_check(tmp_path):
    layout = app_layout(tmp_path)
    replay_report(layout, statuses=("agreed", "differed"),
                  findings=[Finding("RPL011", "error", "replay-app request r1", "differs", "fix")])
    assert check_replay(layout) == []
    (layout.root / "data").mkdir()
    (layout.root / "data" / replay_set.SET_FILE).write_text("{}\n")
    assert [finding.code for finding in check_replay(layout)] == ["RPL018"]


def test_migrate_check_reports_replay_not_run_as_info_and_a_lost_step_still_fails(tmp_path, migrate):
    fixtures = Path(__file__).parent / "fixtures" / "analyze" / "openai_tools"
    workdir = tmp_path / "work"
    shutil.copytree(fixtures, workdir / "original_mlflow_model")
    assert migrate("analyze", "--workdir", str(workdir)).returncode in (0, 1)
    assert migrate("scaffold", "--app-name", "replay-app", "--workdir", str(workdir)).returncode == 0
    result = json.loads(migrate("check", "--workdir", str(workdir), "--json").stdout)
    replay_findings = [finding for finding in result["findings"] if finding["path"].endswith("reports/replay.json")]
    assert [(finding["code"], finding["severity"]) for finding in replay_findings] == [("CHK010", "info")]
    asked = json.loads(migrate("check", "replay", "--workdir", str(workdir), "--json").stdout)
    assert [finding["code"] for finding in asked["findings"]] == ["CHK004"]


def test_a_replay_set_that_git_would_not_ignore_is_a_warning(tmp_path):
    layout = app_layout(tmp_path)
    replay_report(layout)
    recorded = layout.workdir / ".replay" / "replay-app" / replay_set.SET_FILE
    recorded.parent.mkdir(parents=True)
    recorded.write_text("{}\n")
    assert [(finding.code, finding.severity) for finding in check_replay(layout)] == [("RPL019", "warning")]
    (layout.workdir / ".replay" / ".gitignore").write_text(replay_set.IGNORE_ALL)
    assert check_replay(layout) == []


# ------------------------------------------------------------------------------------------------ one request judged


def answers(text: str = "four words", custom_outputs=None) -> tuple[dict, dict, dict]:
    """The app's invoke and stream answers, and the original's, all saying `text`."""
    item = {"type": "message", "id": "msg-1", "role": "assistant",
            "content": [{"type": "output_text", "text": text}]}
    event = {"type": "response.output_item.done", "item": item}
    invoke = {"status_code": 200, "error": None, "body": {"output": [item], "custom_outputs": custom_outputs}}
    stream = {"status_code": 200, "error": None, "text": f"data: {json.dumps(event)}\n\ndata: [DONE]\n\n"}
    original = {"format": "responses", "invoke": {"output": [{**item, "id": "other-id"}],
                                                  "custom_outputs": custom_outputs},
                "stream": [event], "seconds": 0.2}
    return invoke, stream, original


def logged(response=None) -> replay_set.LoggedRequest:
    return replay_set.LoggedRequest("req-1", None, "responses", None, 10.0, EXAMPLE_REQUEST, EXAMPLE_REQUEST,
                                    response)


def test_a_request_agrees_differs_fails_or_is_not_compared():
    from scripts.replay_compare import judged

    invoke, stream, original = answers(custom_outputs={"session": "demo"})
    assert judged(logged(), invoke, stream, original, "exact", 0.1)["status"] == "agreed"

    changed, changed_stream, _ = answers(custom_outputs={"changed": True})
    record = judged(logged(), changed, changed_stream, original, "exact", 0.1)
    assert (record["status"], record["part"], record["difference"]["path"]) == ("differed", "invoke",
                                                                                 "$.custom_outputs.session")
    failing = {"status_code": 500, "error": None, "body": {"error": "boom"}}
    assert judged(logged(), failing, stream, original, "exact", 0.1)["status"] == "failed"
    assert judged(logged(), invoke, stream, None, "exact", 0.1)["status"] == "uncompared"
    raised = judged(logged(), invoke, stream, {"error": "KeyError: 'x'"}, "exact", 0.1)
    assert raised["status"] == "uncompared" and "KeyError" in raised["original_error"]


def test_a_kept_logged_response_is_compared_by_structure():
    from scripts.replay_compare import judged

    invoke, stream, _ = answers(custom_outputs={"session": "demo"})
    same_shape = {"output": [{"type": "message", "role": "assistant", "content": [{"type": "output_text",
                                                                                  "text": "other words"}]}],
                  "custom_outputs": {"session": "x"}}
    assert judged(logged(same_shape), invoke, stream, None, "exact", 0.1)["status"] == "agreed"
    with_tool = {**same_shape, "output": [{"type": "function_call", "name": "word_count", "arguments": "{}"}]}
    record = judged(logged(with_tool), invoke, stream, None, "exact", 0.1)
    assert (record["status"], record["part"]) == ("differed", "logged")
