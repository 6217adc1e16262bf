"""Agents of shapes the class transform does not expect: factories, copied packages with unused legacy code,
unrelated classes, LangChain-flavor models, pickled models, ChatModel. Each must migrate, or be named by a
finding that says why; none may be blocked by a false alarm (issue 11, patterns 7, 8, 10)."""

from __future__ import annotations

import os

import pytest

from scripts.analyze import analyze
from tests.test_code_migration import migrated, static_check

pytestmark = pytest.mark.serial_minutes(1.8)  # run first under xdist: tests/conftest.py

CORPUS_ENV = {"DATABRICKS_HOST": "http://127.0.0.1:9", "DATABRICKS_TOKEN": "not-a-real-token"}


@pytest.fixture(autouse=True)
def workspace_env(monkeypatch):
    for key, value in CORPUS_ENV.items():
        monkeypatch.setenv(key, os.environ.get(key, value))


def analyzed(tmp_path, agent):
    from tests.test_code_migration import CORPUS
    import shutil

    workdir = tmp_path / "work"
    shutil.copytree(CORPUS / agent, workdir / "original_mlflow_model")
    return analyze(workdir)[1]


def codes(findings, severity=None) -> set[str]:
    return {finding.code for finding in findings if severity is None or finding.severity == severity}


# ---------------------------------------------------------------------------------------------------- factories


def test_a_factory_in_the_package_is_followed_to_its_class_and_kept_as_the_way_to_build_it(tmp_path):
    report = analyzed(tmp_path, "factory_agent")
    agent = report.payload["agent_class"]
    assert agent["name"] == "ShopAgent" and agent["base"] == "ResponsesAgent"
    assert agent["factory"] == {"expression": "build_agent(model='databricks-claude-sonnet-4', tone='brief')",
                                "line": 14, "returns": "ShopAgent"}
    assert not codes(report.findings, "error") and "ANA050" in codes(report.findings)

    _, app, code_report = migrated(tmp_path / "code", "factory_agent", "sync")
    source = (app / "agent_server" / "agent.py").read_text()
    # The factory's arguments are kept: ShopAgent() alone would not even start (it takes model and tone).
    assert "AGENT = build_agent(model=\"databricks-claude-sonnet-4\", tone=\"brief\")" in source
    assert "ShopAgent()" not in source and code_report.payload["transform"] == "wrapper"
    assert code_report.payload["handlers"] and "AGENT.predict_stream" in source


def test_an_unused_chat_model_and_async_function_of_a_copied_package_are_no_errors(tmp_path):
    _, app, _ = migrated(tmp_path, "factory_agent", "async")
    findings = static_check(app)
    errors = [finding for finding in findings if finding.severity == "error"]
    assert not [finding for finding in errors if "legacy.py" in finding.path], errors
    assert not [finding for finding in errors if finding.code in ("COD005", "COD014")], errors
    # ... while a blocking call the handlers do reach is still found.
    assert any(finding.code == "COD010" and "AGENT.predict_stream" in finding.message for finding in findings)


def test_a_library_factory_is_served_as_it_is_instead_of_no_agent_class(tmp_path):
    report = analyzed(tmp_path, "factory_library")
    assert "ANA003" not in codes(report.findings)
    assert "ANA050" in codes(report.findings, "warning")
    assert report.payload["agent_class"]["found_by"] == "factory"

    _, app, code_report = migrated(tmp_path / "code", "factory_library", "sync")
    source = (app / "agent_server" / "agent.py").read_text()
    assert "AGENT = config.as_responses_agent()" in source
    assert "run_sync(AGENT.predict, request)" in source and "AGENT.predict_stream" not in source
    assert not [finding for finding in static_check(app) if finding.code == "COD014"]


def test_super_in_an_unrelated_class_does_not_force_wrapper_mode(tmp_path):
    _, app, report = migrated(tmp_path, "unrelated_super", "sync")
    assert report.payload["transform"] == "extract", report.payload["wrapper_reason"]
    assert "super().__init__" in (app / "agent_server" / "agent.py").read_text()  # AnswerError is kept


# ---------------------------------------------------------------------------------------------------- LangChain


def test_a_langchain_model_from_code_is_a_langchain_model_not_a_missing_class(tmp_path):
    report = analyzed(tmp_path, "langchain_chain")
    assert report.payload["model_kind"] == "langchain" and report.payload["agent_class"] is None
    assert codes(report.findings, "error") == set()
    [finding] = [finding for finding in report.findings if finding.code == "ANA051"]
    assert finding.severity == "info" and "`chain`" in finding.message


def test_a_langchain_model_without_source_is_named_as_such(tmp_path):
    from scripts.analyze import analyze_model
    import shutil
    from tests.test_code_migration import CORPUS

    shutil.copytree(CORPUS / "langchain_chain", tmp_path / "model")
    mlmodel = tmp_path / "model" / "MLmodel"
    mlmodel.write_text(mlmodel.read_text().replace("    model_code_path: /Users/dev/projects/langchain_chain/chain.py\n",
                                                   ""))
    _, findings = analyze_model(tmp_path / "model", "model")
    [finding] = [finding for finding in findings if finding.severity == "error"]
    assert finding.code == "ANA051" and "a LangChain model" in finding.message


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_langchain_model_is_served_through_the_adapter_in_worker_threads(tmp_path, mode):
    _, app, report = migrated(tmp_path, "langchain_chain", mode)
    source = (app / "agent_server" / "agent.py").read_text()
    assert report.payload["transform"] == "langchain" and "COD080" in codes(report.findings)
    assert "set_model" not in source
    assert "run_sync(invoke_runnable, chain, request)" in source
    assert "iterate_sync(stream_runnable, chain, request)" in source
    assert (app / "agent_server" / "langchain_adapter.py").is_file()
    assert not [finding for finding in static_check(app) if finding.severity == "error"]


def test_the_langchain_adapter_maps_messages_states_and_chunks():
    from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage
    from langchain_core.runnables import RunnableLambda
    from mlflow.types.responses import ResponsesAgentRequest

    from agent_server import langchain_adapter as adapter
    from checks.smoke import original_shape

    request = ResponsesAgentRequest(input=[{"role": "developer", "content": "Be brief."},
                                           {"role": "user", "content": "hi"}], custom_inputs={"thread_id": "t1"})
    seen = []

    def echo(state):
        seen.append(state)
        return {"messages": [HumanMessage("hi"), AIMessage("hello", id="m1")], "steps": 2}

    answer = adapter.invoke_runnable(RunnableLambda(echo), request).model_dump(exclude_none=True)
    assert seen[0] == {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
                       "thread_id": "t1"}
    assert answer["output"][0]["content"][0]["text"] == "hello" and answer["output"][0]["id"] == "m1"

    chunks = [AIMessageChunk("hel", id="c1"), (AIMessageChunk("lo", id="c1"), {"langgraph_node": "llm"})]
    events = [event.model_dump(exclude_none=True) for event in adapter.events_from_pieces(chunks)]
    assert [event["type"] for event in events] == ["response.output_text.delta", "response.output_text.delta",
                                                   "response.output_item.done"]
    assert events[-1]["item"]["content"][0]["text"] == "hello"

    # The original's answer as MLflow's pyfunc records it (a list, messages as dicts) maps the same way.
    recorded = [{"messages": [{"role": "user", "content": "hi"}, {"type": "ai", "content": "hello", "id": "m1"}]}]
    assert original_shape(recorded) == "langchain" and original_shape({"messages": [{"role": "assistant"}]}) == \
        "chat_agent"
    converted = adapter.original_as_responses({"invoke": recorded, "stream": recorded})
    assert converted["invoke"] == answer
    assert converted["stream"][0]["item"] == answer["output"][0]


# ---------------------------------------------------------------------------------------------------- e2e: smoke parity


def smoke_parity(tmp_path, agent: str, mode: str, env: dict) -> dict:
    """The fixture migrated in `mode` and smoke-tested against the original model (run by real MLflow)."""
    import json
    import shutil
    import sys

    from tests.conftest import migrate_in_process
    from tests.test_code_migration import CORPUS

    workdir = tmp_path / "work"
    shutil.copytree(CORPUS / agent, workdir / "original_mlflow_model")
    (workdir / "migration" / "source").mkdir(parents=True)
    for argv in (["analyze"], ["scaffold", "--app-name", "shape-app"], ["code", "--mode", mode]):
        completed = migrate_in_process(*argv, "--workdir", str(workdir), env=env)
        assert completed.returncode == 0, completed.stdout + completed.stderr
    app = workdir / "shape-app"
    completed = migrate_in_process("smoke", "--workdir", str(workdir), "--app", str(app), "--python", sys.executable,
                                   env=env)
    report = json.loads((app / "migration" / "reports" / "smoke.json").read_text())
    assert completed.returncode == 0, completed.stdout + completed.stderr + json.dumps(report["findings"])
    assert report["payload"]["parity"]["status"] == "ran" and report["payload"]["comparison"] == "exact"
    return report


@pytest.mark.e2e
@pytest.mark.parametrize("agent, mode", [("langchain_chain", "sync"), ("langchain_chain", "async"),
                                         ("factory_agent", "sync"), ("unrelated_super", "sync"),
                                         ("chat_model", "sync"), ("chat_model", "async"), ("pickled_agent", "sync")])
def test_the_shapes_answer_like_the_original(agent, mode, standin_workspace, tmp_path):
    smoke_parity(tmp_path, agent, mode, standin_workspace.environ())


# ---------------------------------------------------------------------------------------------------- ChatModel


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_chat_model_is_converted_as_a_chat_agent_is(tmp_path, mode):
    _, app, report = migrated(tmp_path, "chat_model", mode)
    source = (app / "agent_server" / "agent.py").read_text()
    assert report.payload["transform"] == "chat_model" and "COD081" in codes(report.findings)
    assert "COD005" not in codes(report.findings)
    assert "run_sync(predict_with_chat_model, AGENT.predict, request)" in source
    assert "iterate_sync(stream_from_chat_model_predict, AGENT.predict, request)" in source
    findings = static_check(app)
    assert not [finding for finding in findings if finding.severity == "error"], findings
    assert "COD081" in codes(findings, "info")


def test_the_chat_model_adapter_maps_messages_completions_and_chunks():
    from mlflow.types.llm import ChatChoice, ChatCompletionResponse, ChatMessage
    from mlflow.types.responses import ResponsesAgentRequest

    from agent_server import chat_model_adapter as adapter

    request = ResponsesAgentRequest(input=[
        {"role": "user", "content": "weather?"},
        {"type": "function_call", "call_id": "c1", "name": "weather", "arguments": "{}", "id": "f1"},
        {"type": "function_call_output", "call_id": "c1", "output": "sunny"}], custom_inputs={"ticket": 7})
    messages, params = adapter.chat_model_inputs(request)
    assert [message.role for message in messages] == ["user", "assistant", "tool"]
    assert messages[1].tool_calls[0].function.name == "weather" and messages[2].tool_call_id == "c1"
    assert params.custom_inputs == {"ticket": 7}

    completion = ChatCompletionResponse(id="r1", choices=[ChatChoice(index=0, message=ChatMessage(
        role="assistant", content="It is sunny."))], custom_outputs={"ticket": 7})
    answer = adapter.predict_with_chat_model(lambda context, messages, params: completion, request)
    assert answer.output[0].content[0]["text"] == "It is sunny." and answer.custom_outputs == {"ticket": 7}
    assert adapter.original_as_responses({"invoke": completion.to_dict(), "stream": None})["invoke"] == \
        answer.model_dump(exclude_none=True)

    chunks = [{"id": "r1", "choices": [{"index": 0, "delta": {"role": "assistant", "content": "It is "}}]},
              {"id": "r1", "choices": [{"index": 0, "delta": {"content": "sunny."}}]}]
    events = [event.model_dump(exclude_none=True) for event in adapter.events_from_chunks(chunks)]
    assert [event["type"] for event in events] == ["response.output_text.delta", "response.output_text.delta",
                                                   "response.output_item.done"]
    assert events[-1]["item"]["content"][0]["text"] == "It is sunny."


# ---------------------------------------------------------------------------------------------------- pickled


def test_a_pickle_is_read_from_its_opcodes_without_running_it(tmp_path):
    import pickle

    from scripts.model.pickled import read_pickled_agent

    class Boom:
        def __reduce__(self):  # unpickling this would run os.system: reading its opcodes must not
            return (os.system, ("touch " + str(tmp_path / "ran"),))

    path = tmp_path / "python_model.pkl"
    path.write_bytes(pickle.dumps(Boom()))
    facts = read_pickled_agent(path)
    assert not (tmp_path / "ran").exists() and facts.class_name == "system"


def test_a_pickled_agent_whose_state_init_rebuilds_is_migrated_in_wrapper_mode(tmp_path):
    report = analyzed(tmp_path, "pickled_agent")
    [finding] = [finding for finding in report.findings if finding.code == "ANA053"]
    assert "model, system_prompt" in finding.message and not codes(report.findings, "error")

    _, app, code_report = migrated(tmp_path / "code", "pickled_agent", "sync")
    source = (app / "agent_server" / "agent.py").read_text()
    assert "from agent_server.support_agent import SupportAgent" in source and "AGENT = SupportAgent()" in source
    assert "AGENT.load_context(" in source and code_report.payload["transform"] == "wrapper"
    assert not [finding for finding in static_check(app) if finding.severity == "error"]


def test_a_pickled_agent_holding_state_init_does_not_set_is_an_error_naming_it(tmp_path):
    import shutil
    import sys

    import cloudpickle

    from tests.test_code_migration import CORPUS

    model = tmp_path / "work" / "original_mlflow_model"
    shutil.copytree(CORPUS / "pickled_agent", model)
    sys.path.insert(0, str(model / "code"))
    try:
        import support_agent

        agent = support_agent.SupportAgent()
        agent.few_shot_examples = ["set after construction, before logging"]
        (model / "python_model.pkl").write_bytes(cloudpickle.dumps(agent))
    finally:
        sys.path.remove(str(model / "code"))
        sys.modules.pop("support_agent", None)
    report = analyze(tmp_path / "work")[1]
    [finding] = [finding for finding in report.findings if finding.code == "ANA054"]
    assert finding.severity == "error" and "few_shot_examples" in finding.message


def test_a_chat_model_original_recorded_as_responses_is_still_compared_as_a_chat_completion():
    """MLflow's ChatModel wrapper pops `messages` from the request, so the runner records format "responses"."""
    from checks.smoke import original_as_responses

    completion = {"choices": [{"message": {"role": "assistant", "content": "Paris"}, "index": 0}], "id": "r1"}
    converted = original_as_responses({"format": "responses", "invoke": completion, "stream": None})
    assert converted["invoke"]["output"][0]["content"][0]["text"] == "Paris"
    assert [event["type"] for event in converted["stream"]] == ["response.output_item.done"]
