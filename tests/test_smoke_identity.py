"""Smoke proves the app acts as each user: the identity record's findings, and (e2e) the obo_tools fixture
agents migrated and served against the stand-in, alone and with 8 users at once, plus `--concurrency`."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from checks.identity import concurrency_findings, identity_findings
from scripts.smoke_concurrency import varied_inputs
from scripts.smoke_identity import user_targets
from tests.conftest import migrate_in_process

pytestmark = pytest.mark.serial_minutes(2.7)  # run first under xdist: tests/conftest.py

CORPUS = Path(__file__).parent / "fixtures" / "agents"
APP = "obo-app"


def calls(*entries: tuple[str, str, str]) -> list[dict]:
    return [{"seq": seq, "kind": kind, "resource": resource, "principal": who}
            for seq, (kind, resource, who) in enumerate(entries)]


TARGETS = {"sql": ["wh"], "llm": "*"}


def record(solo_calls, concurrent=None) -> dict:
    identity = {"status": "ran", "reason": None, "targets": TARGETS, "app_principal": "app-x",
                "solo": {"user": "user-0-x", "calls": solo_calls}}
    if concurrent is not None:
        identity["concurrent"] = concurrent
    return {"identity": identity, "comparison": "exact"}


def codes(findings) -> list[str]:
    return [finding.code for finding in findings]


def test_targets_come_from_obo_resources_and_user_scopes():
    assert user_targets(json.loads(json.dumps({"resources": {"databricks": {
        "sql_warehouse": [{"name": "wh", "on_behalf_of_user": True}],
        "genie_space": [{"name": "g"}]}}}))) == {"sql": ["wh"]}
    assert user_targets({"auth_policy": {"user_auth_policy": {"api_scopes": ["model-serving", "sql"]}}}) == {
        "llm": "*", "sql": "*"}
    assert user_targets({"resources": {"databricks": {"serving_endpoint": [{"name": "e"}]}}}) == {}
    with_system = {"auth_policy": {
        "system_auth_policy": {"resources": {"databricks": {"serving_endpoint": [{"name": "llm"}]}}},
        "user_auth_policy": {"api_scopes": ["serving.serving-endpoints", "sql"]}}}
    targets = user_targets(with_system)
    assert targets == {"llm": {"except": ["llm"]}, "sql": "*"}
    as_app = {"identity": {"status": "ran", "targets": targets, "app_principal": "app-x", "solo": {
        "user": "user-0-x", "calls": calls(("llm", "llm", "app-x"), ("llm", "other", "app-x"))}}}
    [finding] = identity_findings(as_app, "app")
    assert "llm other" in finding.message and "llm llm" not in finding.message


def test_a_call_as_the_app_to_an_obo_resource_is_an_error():
    ok = calls(("llm", "e", "user-0-x"), ("sql", "wh", "user-0-x"), ("sql", "other", "app-x"))
    assert identity_findings(record(ok), "app") == []
    as_app = calls(("llm", "e", "app-x"), ("sql", "wh", "app-x"))
    [finding] = identity_findings(record(as_app), "app")
    assert finding.code == "SMK030" and "the app's service principal" in finding.message


def test_users_running_with_each_others_tokens_are_caught():
    solo = calls(("llm", "e", "user-0-x"), ("sql", "wh", "user-0-x"))
    users = ["user-1-x", "user-2-x"]
    own = calls(("llm", "e", "user-1-x"), ("llm", "e", "user-2-x"), ("sql", "wh", "user-2-x"),
                ("sql", "wh", "user-1-x"))
    assert identity_findings(record(solo, {"users": users, "statuses": [200, 200], "calls": own}), "app") == []
    mixed = calls(("llm", "e", "user-1-x"), ("llm", "e", "user-2-x"), ("sql", "wh", "user-2-x"),
                  ("sql", "wh", "user-2-x"))
    [finding] = identity_findings(record(solo, {"users": users, "statuses": [200, 200], "calls": mixed}), "app")
    assert finding.code == "SMK031" and "2 of them" in finding.message
    failed = identity_findings(record(solo, {"users": users, "statuses": [200, 500], "calls": own}), "app")
    assert codes(failed) == ["SMK033"]
    # The solo record covers invoke and stream: twice the calls of one concurrent invoke.
    both = record(solo + calls(("llm", "e", "user-0-x"), ("sql", "wh", "user-0-x")),
                  {"users": users, "statuses": [200, 200], "calls": own})
    both["identity"]["solo"]["requests"] = 2
    assert identity_findings(both, "app") == []


def test_an_agent_acting_as_users_without_the_standin_is_unverified_not_passed():
    payload = {"identity": {"status": "skipped", "reason": "no stand-in", "targets": TARGETS}}
    assert codes(identity_findings(payload, "app")) == ["SMK034"]


def test_concurrency_compares_each_answer_with_the_original_answer_to_that_input():
    inputs = varied_inputs({"input": [{"role": "user", "content": "hi"}], "context": {"k": 1}}, 3)
    assert [item["input"][0]["content"] for item in inputs] == [
        "hi (variant 1 of 3)", "hi (variant 2 of 3)", "hi (variant 3 of 3)"]
    assert all(item["context"] == {"k": 1} for item in inputs)

    def answer(text):
        return {"output": [{"type": "message", "id": "m", "role": "assistant",
                            "content": [{"type": "output_text", "text": text}]}]}
    original = [answer("a"), answer("b")]
    app = [{"status_code": 200, "body": answer("a")}, {"status_code": 200, "body": answer("a")}]
    payload = {"comparison": "exact", "concurrency": {"n": 2, "inputs": [], "app": app, "original": original,
                                                      "error": None}}
    [finding] = concurrency_findings(payload, "app")
    assert finding.code == "SMK035" and "input 1" in finding.path


# ---------------------------------------------------------------------------------------------------- e2e


@pytest.fixture(scope="module")
def slow_workspace():
    """A stand-in of our own whose LLM answers take 150 ms, as a real one's take longer: requests overlap."""
    import standin

    with standin.running(latency_ms=150) as workspace:
        yield workspace


def migrate_fixture(tmp_path: Path, agent: str, mode: str, env: dict) -> Path:
    workdir = tmp_path / "work"
    shutil.copytree(CORPUS / agent, workdir / "original_mlflow_model")
    (workdir / "migration" / "source").mkdir(parents=True)
    for argv in (["analyze"], ["scaffold", "--app-name", APP], ["code", "--mode", mode]):
        completed = migrate_in_process(*argv, "--workdir", str(workdir), env=env)
        # code exits 1 on error findings it leaves for the assistant (COD010 in async mode), but writes the app
        assert completed.returncode in (0, 1), completed.stdout + completed.stderr
    assert (workdir / APP / "migration" / "reports" / "code.json").is_file(), completed.stdout
    assert "this app has no agent yet" not in (workdir / APP / "agent_server" / "agent.py").read_text()
    return workdir


def smoke(workdir: Path, env: dict, *extra: str):
    completed = migrate_in_process("smoke", "--workdir", str(workdir), "--python", sys.executable, *extra, env=env)
    report = json.loads((workdir / APP / "migration" / "reports" / "smoke.json").read_text())
    return completed, report


def error_codes(report: dict) -> set[str]:
    return {finding["code"] for finding in report["findings"] if finding["severity"] == "error"}


@pytest.mark.e2e
def test_obo_agent_left_on_model_serving_credentials_runs_every_user_as_the_app(tmp_path, slow_workspace):
    """Issue 10's failure: the app kept ModelServingUserCredentials (what `migrate code` wrote before it rewrote
    them), which outside Model Serving falls back to the app's own credentials. Smoke fails with SMK030."""
    env = slow_workspace.environ()
    workdir = migrate_fixture(tmp_path, "obo_tools_stateless", "sync", env)
    agent = workdir / APP / "agent_server" / "agent.py"
    agent.write_text(agent.read_text().replace(
        "user_client = user_workspace_client()",
        "user_client = WorkspaceClient(credentials_strategy=ModelServingUserCredentials())")
        + "\nfrom databricks.sdk.credentials_provider import ModelServingUserCredentials  # noqa: E402\n")
    completed, report = smoke(workdir, env, "--users", "2")
    assert completed.returncode == 1
    assert "SMK030" in error_codes(report), report["findings"]
    identity = report["payload"]["identity"]
    assert {call["principal"] for call in identity["solo"]["calls"]} == {identity["app_principal"]}


@pytest.mark.e2e
def test_a_stateless_obo_agent_acts_as_each_user_alone_and_with_8_at_once(tmp_path, slow_workspace):
    env = slow_workspace.environ()
    workdir = migrate_fixture(tmp_path, "obo_tools_stateless", "sync", env)
    completed, report = smoke(workdir, env, "--concurrency", "4")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    identity = report["payload"]["identity"]
    assert identity["status"] == "ran" and identity["targets"] == {"llm": "*", "sql": "*", "genie": "*"}
    assert {call["kind"] for call in identity["solo"]["calls"]} == {"llm", "sql", "genie"}
    assert {call["principal"] for call in identity["solo"]["calls"]} == {identity["solo"]["user"]}
    concurrent = identity["concurrent"]
    assert len(concurrent["users"]) == 8 and concurrent["statuses"] == [200] * 8
    assert {call["principal"] for call in concurrent["calls"]} == set(concurrent["users"])
    concurrency = report["payload"]["concurrency"]
    assert concurrency["n"] == 4 and concurrency["error"] is None
    texts = {answer["body"]["output"][-1]["content"][0]["text"] for answer in concurrency["app"]}
    assert len(texts) == 4  # four different inputs, four different answers, each matching the original's


def sql_statements_per_user(concurrent: dict) -> list[int]:
    """One request runs one SQL statement: how many ran with each concurrent user's token."""
    return [sum(1 for call in concurrent["calls"] if call["kind"] == "sql" and call["principal"] == user)
            for user in concurrent["users"]]


@pytest.mark.e2e
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_an_obo_agent_writing_self_per_request_acts_as_each_user_alone_and_with_8_at_once(tmp_path, slow_workspace,
                                                                                          mode):
    """obo_tools rebuilds its tool table (closing over the user's client) on `self` per request. The code step
    builds the agent per request (its construction is cheap), so each of 8 concurrent users runs only as itself."""
    env = slow_workspace.environ()
    workdir = migrate_fixture(tmp_path, "obo_tools", mode, env)
    code = json.loads((workdir / APP / "migration" / "reports" / "code.json").read_text())["payload"]
    assert code["request_state"]["decision"] == "per_request" and code["transform"] == "wrapper"
    completed, report = smoke(workdir, env)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    identity = report["payload"]["identity"]
    assert {call["kind"] for call in identity["solo"]["calls"]} == {"llm", "sql", "genie"}
    assert {call["principal"] for call in identity["solo"]["calls"]} == {identity["solo"]["user"]}
    concurrent = identity["concurrent"]
    assert len(concurrent["users"]) == 8 and concurrent["statuses"] == [200] * 8
    assert sql_statements_per_user(concurrent) == [1] * 8


@pytest.mark.e2e
def test_an_obo_agent_hand_broken_back_to_one_shared_instance_mixes_users_and_smoke_catches_it(tmp_path,
                                                                                              slow_workspace):
    """The proof that smoke can fail: the same app with its handlers put back on the one module-level instance
    (what wrapper mode wrote before), so under 8 users most run their tools with another user's token."""
    env = slow_workspace.environ()
    workdir = migrate_fixture(tmp_path, "obo_tools", "sync", env)
    agent = workdir / APP / "agent_server" / "agent.py"
    text = agent.read_text()
    assert "request_agent = new_request_agent()" in text
    agent.write_text(text.replace("request_agent = new_request_agent()", "request_agent = AGENT"))
    completed, report = smoke(workdir, env)
    identity = report["payload"]["identity"]
    assert "solo" in identity, (completed.stdout, completed.stderr, report["findings"])
    assert {call["principal"] for call in identity["solo"]["calls"]} == {identity["solo"]["user"]}  # alone: fine
    assert completed.returncode == 1
    assert "SMK031" in error_codes(report), report["findings"]
    statements = sql_statements_per_user(identity["concurrent"])
    assert sum(statements) == 8 and max(statements) > 1, statements


@pytest.mark.e2e
def test_an_obo_agent_expensive_to_build_is_refused_and_the_check_fails(tmp_path, standin_workspace, migrate):
    """obo_tools_expensive reads an artifact in load_context: neither one shared instance nor one per request is
    right, so the code step exits 1 with COD050 naming the write and the costs, and `migrate check` is FAIL."""
    env = standin_workspace.environ()
    workdir = tmp_path / "work"
    shutil.copytree(CORPUS / "obo_tools_expensive", workdir / "original_mlflow_model")
    (workdir / "migration" / "source").mkdir(parents=True)
    for argv in (["analyze"], ["scaffold", "--app-name", APP]):
        assert migrate(*argv, "--workdir", str(workdir), env=env).returncode == 0
    refused = migrate("code", "--mode", "sync", "--workdir", str(workdir), env=env)
    assert refused.returncode == 1 and "[COD050]" in refused.stdout + refused.stderr
    code = json.loads((workdir / APP / "migration" / "reports" / "code.json").read_text())
    assert code["status"] == "error" and code["payload"]["request_state"]["decision"] == "refused"
    assert any(finding["code"] == "COD050" and "_tools_dict" in finding["message"] for finding in code["findings"])
    check = migrate("check", "code", "--workdir", str(workdir), env=env)
    assert check.returncode == 1 and "COD050" in check.stdout and "verdict: FAIL" in check.stdout, check.stdout


@pytest.mark.e2e
def test_a_stateless_obo_agent_acts_as_each_user_in_async_mode_too(tmp_path, slow_workspace):
    """Async handlers (blocking calls not yet converted: COD010 is the code check's business, not smoke's)."""
    env = slow_workspace.environ()
    workdir = migrate_fixture(tmp_path, "obo_tools_stateless", "async", env)
    assert "async def" in (workdir / APP / "agent_server" / "agent.py").read_text()
    completed, report = smoke(workdir, env)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    identity = report["payload"]["identity"]
    assert {call["principal"] for call in identity["solo"]["calls"]} == {identity["solo"]["user"]}
    assert set(identity["concurrent"]["statuses"]) == {200}
