"""`migrate analyze`: what it reads from a downloaded model, its findings, its schema, and its check."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from checks.analyze import check_analyze
from scripts.core.schema_registry import validation_errors
from scripts.analyze import analyze
from scripts.model.mlmodel import RESOURCE_TYPES
from scripts.model.requirements import parse_requirements
from scripts.core.errors import MigrateError
from scripts.core.layout import MigrationLayout
from scripts.core.reports import read_report, write_report

FIXTURES = Path(__file__).parent / "fixtures" / "analyze"


def downloaded(fixture: str, workdir: Path) -> Path:
    """A working directory whose original_mlflow_model/ is a copy of the fixture model folder."""
    shutil.copytree(FIXTURES / fixture, workdir / "original_mlflow_model")
    return workdir


def analyzed(fixture: str, workdir: Path) -> tuple[dict, list]:
    """Run the analyze step on a fixture and write its report (which validates it against the schema)."""
    layout, report = analyze(downloaded(fixture, workdir))
    write_report(layout, report)
    return report.payload, report.findings


def codes(findings) -> list[str]:
    return sorted(finding.code for finding in findings)


def tree_hashes(folder: Path) -> dict[str, str]:
    return {path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*")) if path.is_file()}


@pytest.mark.parametrize("fixture", sorted(path.name for path in FIXTURES.iterdir()))
def test_every_fixture_gives_a_valid_report_and_leaves_the_download_untouched(fixture, tmp_path):
    workdir = downloaded(fixture, tmp_path)
    before = tree_hashes(workdir / "original_mlflow_model")
    layout, report = analyze(workdir)
    write_report(layout, report)
    assert validation_errors(read_report(layout, "analyze"), "analyze") == []
    assert tree_hashes(workdir / "original_mlflow_model") == before
    assert check_analyze(layout) == []  # a fresh report matches what the check re-derives


def test_responses_agent_whose_predict_calls_predict_stream(tmp_path):
    payload, findings = analyzed("responses_stream", tmp_path)
    assert payload["model_kind"] == "models-from-code"
    assert payload["entry_file"]["path"] == "responses_agent.py"
    assert payload["entry_file"]["model_code_path"] == "/Users/someone/project/responses_agent.py"
    assert payload["task"] == "agent/v1/responses"
    agent = payload["agent_class"]
    assert (agent["name"], agent["base"], agent["found_by"]) == ("EchoAgent", "ResponsesAgent", "set_model")
    predict, stream = agent["methods"]["predict"], agent["methods"]["predict_stream"]
    assert predict["present"] and predict["calls_predict_stream"] and not predict["is_async"]
    assert stream["present"] and stream["is_generator"] and not stream["is_async"]
    assert agent["methods"]["__init__"]["attributes"] == ["client", "model"]
    assert agent["methods"]["load_context"] == {"present": False}
    assert payload["set_model_calls"][0]["target"] == "AGENT"
    assert payload["set_model_calls"][0]["class_name"] == "EchoAgent"
    assert [framework["name"] for framework in payload["frameworks"]] == ["openai"]
    assert {(call["call"], call["kind"]) for call in payload["blocking_calls"]} == {
        ("OpenAI", "sync-client"), ("self.client.chat.completions.create", "llm-call")}
    assert [entry["name"] for entry in payload["requirements"]] == ["mlflow", "openai"]
    assert payload["python_version"] == {"version": "3.11.7", "source": "python_env.yaml", "mlmodel": "3.11.7"}
    assert payload["input_example"]["present"] and payload["input_example"]["format"] == "responses"
    assert payload["state"] == {"stateful": False, "kinds": [], "signals": [], "request_writes": [],
                                "construction": {"cheap": True, "costs": []}}
    assert findings == []


def test_async_predict_stream_and_blocking_calls_inside_it(tmp_path):
    payload, findings = analyzed("async_stream", tmp_path)
    agent = payload["agent_class"]
    assert payload["entry_file"]["path"] == "async_agent.py"  # from a Windows model_code_path
    assert agent["methods"]["predict_stream"]["is_async"] and agent["methods"]["predict_stream"]["is_generator"]
    assert not agent["methods"]["predict"]["calls_predict_stream"]
    blocking = {call["call"]: call for call in payload["blocking_calls"]}
    # The awaited create() on the async client is not blocking; time.sleep and requests.get are, on the loop.
    assert set(blocking) == {"time.sleep", "requests.get"}
    assert blocking["time.sleep"]["in_async"] and blocking["time.sleep"]["function"] == "AsyncAgent.predict_stream"
    assert "asyncio.sleep" in blocking["time.sleep"]["async_equivalent"]
    assert "httpx.AsyncClient" in blocking["requests.get"]["async_equivalent"]
    assert [framework["name"] for framework in payload["frameworks"]] == ["databricks-openai"]
    assert payload["python_version"] == {"version": "3.12.3", "source": "MLmodel", "mlmodel": "3.12.3"}
    assert codes(findings) == ["ANA006"]  # no input example: a warning
    assert payload["input_example"]["present"] is False


def test_chat_agent_is_reported_as_legacy_with_the_guided_path(tmp_path):
    payload, findings = analyzed("chat_agent", tmp_path)
    assert payload["agent_class"]["base"] == "ChatAgent" and payload["task"] == "agent/v2/chat"
    assert payload["input_example"]["format"] == "chat"
    assert codes(findings) == ["ANA005"]
    assert findings[0].severity == "warning" and "Responses" in findings[0].fix


def test_pickled_model_is_an_error_that_says_where_the_source_must_come_from(tmp_path):
    payload, findings = analyzed("pickled", tmp_path)
    assert payload["model_kind"] == "pickled" and payload["entry_file"] is None
    assert payload["agent_class"] is None
    pickled = [finding for finding in findings if finding.code == "ANA001"]
    assert len(pickled) == 1 and pickled[0].severity == "error"
    assert "code/" in pickled[0].fix and "author" in pickled[0].fix
    # The class may still be in code/: the finding points at it.
    assert "PickledAgent (code/legacy_agent.py:4)" in pickled[0].message
    assert [module["path"] for module in payload["code"]["modules"]] == ["code/legacy_agent.py"]
    assert [entry["name"] for entry in payload["requirements"]] == ["mlflow", "cloudpickle"]


def test_langgraph_agent_with_a_lakebase_checkpointer_and_thread_ids(tmp_path):
    payload, findings = analyzed("langgraph_state", tmp_path)
    assert [framework["name"] for framework in payload["frameworks"]] == ["langgraph", "langchain"]
    assert payload["state"]["stateful"]
    assert {"checkpointer", "thread_id", "lakebase"} <= set(payload["state"]["kinds"])
    kinds = {(call["call"], call["kind"]) for call in payload["blocking_calls"]}
    assert ("llm.invoke", "langchain-call") in kinds and ("graph.stream", "langchain-call") in kinds
    assert any(".ainvoke" in call["async_equivalent"] for call in payload["blocking_calls"])
    assert {resource["type"] for resource in payload["resources"]} == {"lakebase", "serving_endpoint"}
    assert codes(findings) == ["ANA015"]


@pytest.mark.e2e
def test_the_faq_example_state_built_in_init_and_its_per_thread_memory(downloaded_example):
    """examples/faq_agent, logged and downloaded for real: its __init__ builds the config, the FAQ index, an
    httpx client and a memory keyed by custom_inputs["thread_id"]; the report must say all of that."""
    layout, report = analyze(downloaded_example("faq_agent"))
    write_report(layout, report)
    payload = report.payload
    init = payload["agent_class"]["methods"]["__init__"]
    assert init["present"] and init["parameters"] == ["self", "faq_path"]
    assert {"config", "faq", "index", "workspace", "http", "memory", "memory_lock"} <= set(init["attributes"])
    assert payload["state"]["stateful"] and payload["state"]["kinds"] == ["thread_id"]
    assert any('get("thread_id")' in signal["text"] for signal in payload["state"]["signals"])
    # ANA033: its memory is written under memory_lock, shared by every request on purpose (keyed by thread id).
    assert codes(report.findings) == ["ANA015", "ANA033"]
    assert "thread_id" in next(finding for finding in report.findings if finding.code == "ANA015").message
    assert "memory" in next(finding for finding in report.findings if finding.code == "ANA033").message
    # Building a WorkspaceClient is blocking too (issue 10's table): both constructions of __init__ are listed.
    assert [(call["call"], call["function"]) for call in payload["blocking_calls"]][:2] == \
        [("WorkspaceClient", "FaqAgent.__init__"), ("httpx.Client", "FaqAgent.__init__")]
    assert [artifact["key"] for artifact in payload["artifacts"]["declared"]] == ["faq"]
    assert check_analyze(layout) == []


def test_openai_tool_loop_with_a_class_level_client(tmp_path):
    payload, findings = analyzed("openai_tools", tmp_path)
    agent = payload["agent_class"]
    attributes = {attribute["name"]: attribute for attribute in agent["class_attributes"]}
    assert set(attributes) == {"client", "model", "max_turns"}
    assert attributes["client"]["calls"].endswith("get_open_ai_client")
    assert attributes["model"]["calls"] is None
    assert [framework["name"] for framework in payload["frameworks"]] == ["openai"]
    blocking = {(call["call"], call["kind"], call["function"]) for call in payload["blocking_calls"]}
    assert ("clock.sleep", "sleep", "lookup") in blocking  # `import time as clock` is followed
    assert ("http.post", "http", "lookup") in blocking  # `import requests as http` too
    assert ("self.client.chat.completions.create", "llm-call", "ToolLoopAgent.predict") in blocking
    assert ("subprocess.run", "process", "ToolLoopAgent.predict") in blocking
    assert not any(call["in_async"] for call in payload["blocking_calls"])
    # The class-level client asks the workspace while the module is imported (issue 11, pattern 4).
    assert [(call["line"], call["call"]) for call in payload["import_time_calls"]] == \
        [(20, "WorkspaceClient.serving_endpoints.get_open_ai_client")]
    assert [(finding.code, finding.severity) for finding in findings] == [("ANA040", "warning")]


def test_code_subpackage_with_relative_imports_and_a_base_class_in_code(tmp_path):
    payload, findings = analyzed("code_subpackage", tmp_path)
    agent = payload["agent_class"]
    assert agent["base_chain"] == ["SupportAgent", "BaseAgent", "ResponsesAgent"]
    assert agent["base"] == "ResponsesAgent"
    # predict_stream and __init__ come from BaseAgent in code/mypkg/base.py, found through mypkg/__init__.py.
    assert agent["methods"]["predict_stream"]["defined_in"] == "BaseAgent"
    assert agent["methods"]["predict_stream"]["path"] == "code/mypkg/base.py"
    assert agent["methods"]["__init__"]["attributes"] == ["system_prompt", "tools"]
    assert agent["methods"]["load_context"]["attributes"] == ["greeting"]
    assert agent["methods"]["predict"] == {"present": False}
    modules = {module["path"]: module["module"] for module in payload["code"]["modules"]}
    assert modules == {"code/helpers.py": "helpers", "code/mypkg/__init__.py": "mypkg",
                       "code/mypkg/base.py": "mypkg.base", "code/mypkg/tools.py": "mypkg.tools",
                       "code/mypkg/sub/__init__.py": "mypkg.sub", "code/mypkg/sub/prompts.py": "mypkg.sub.prompts"}
    assert {package["module"]: package["has_init"] for package in payload["code"]["packages"]} == {
        "mypkg": True, "mypkg.sub": True}
    assert payload["code"]["other_files"] == ["code/mypkg/settings.yaml"]
    edges = {(edge["path"], edge["module"]): edge["resolved"] for edge in payload["local_imports"]}
    assert edges[("entry.py", "mypkg")] == ["code/mypkg/__init__.py"]
    assert edges[("entry.py", "helpers")] == ["code/helpers.py"]
    assert edges[("code/mypkg/base.py", ".")] == ["code/mypkg/__init__.py", "code/mypkg/tools.py"]
    assert edges[("code/mypkg/base.py", ".sub.prompts")] == ["code/mypkg/sub/prompts.py"]
    assert edges[("code/mypkg/sub/prompts.py", "..tools")] == ["code/mypkg/tools.py"]
    assert findings == []


def test_artifacts_read_in_load_context(tmp_path):
    payload, findings = analyzed("artifacts_context", tmp_path)
    declared = {artifact["key"]: artifact for artifact in payload["artifacts"]["declared"]}
    assert set(declared) == {"prompt", "settings", "examples"}
    assert declared["prompt"]["exists"] and declared["prompt"]["path"] == "artifacts/prompt.txt"
    assert declared["examples"]["is_dir"]
    assert [read["line"] for read in declared["prompt"]["read_at"]] == [9]
    assert [read["line"] for read in declared["settings"]["read_at"]] == [11]
    assert declared["examples"]["read_at"] == []
    assert payload["artifacts"]["undeclared_files"] == ["artifacts/notes.txt"]
    assert payload["agent_class"]["methods"]["load_context"]["attributes"] == ["prompt", "settings", "glossary"]
    # `glossary` is read but not declared in MLmodel.
    assert codes(findings) == ["ANA012"]


def test_a_declared_artifact_whose_file_is_missing_is_an_error(tmp_path):
    workdir = downloaded("artifacts_context", tmp_path)
    (workdir / "original_mlflow_model" / "artifacts" / "prompt.txt").unlink()
    _, report = analyze(workdir)
    missing = [finding for finding in report.findings if finding.code == "ANA007"]
    assert len(missing) == 1 and missing[0].severity == "error" and "prompt" in missing[0].message
    assert report.status == "error"


def test_all_ten_resource_types_on_behalf_of_user_and_the_auth_policy(tmp_path):
    payload, findings = analyzed("all_resources", tmp_path)
    declared = [resource for resource in payload["resources"] if resource["declared_in"] == "resources"]
    assert sorted(resource["type"] for resource in declared) == sorted(RESOURCE_TYPES)
    assert all(resource["known"] for resource in payload["resources"])
    on_behalf = {resource["name"] for resource in declared if resource["on_behalf_of_user"]}
    assert on_behalf == {"main.docs.index", "01ef0000genie"}
    assert payload["auth_policy"]["user_api_scopes"] == ["serving.serving-endpoints", "sql"]
    assert [(resource["type"], resource["name"]) for resource in payload["auth_policy"]["system_resources"]] == [
        ("serving_endpoint", "databricks-claude-sonnet")]
    assert payload["state"]["stateful"]  # a lakebase resource, though the code shows no state
    assert [site["line"] for site in payload["user_credentials"]] == [2, 6]
    assert codes(findings) == ["ANA014", "ANA015"]


def test_an_unknown_resource_type_is_a_warning_and_is_kept(tmp_path):
    payload, findings = analyzed("unknown_resource", tmp_path)
    unknown = [resource for resource in payload["resources"] if not resource["known"]]
    assert [(resource["type"], resource["name"]) for resource in unknown] == [("volume", "main.files.docs")]
    assert codes(findings) == ["ANA008"] and findings[0].severity == "warning"
    assert "volume" in findings[0].message


def test_a_syntax_error_in_a_source_file_is_an_error_and_the_rest_is_still_analysed(tmp_path):
    payload, findings = analyzed("syntax_error", tmp_path)
    assert codes(findings) == ["ANA009"] and findings[0].path == "original_mlflow_model/code/broken.py"
    broken = {item["path"]: item["syntax_error"] for item in payload["source_files"]}
    assert broken["code/broken.py"]["line"] == 1 and broken["agent.py"] is None
    assert payload["agent_class"]["name"] == "PlainAgent"


def test_an_entry_file_with_a_syntax_error_has_no_agent_class(tmp_path):
    workdir = downloaded("unknown_resource", tmp_path)
    (workdir / "original_mlflow_model" / "agent.py").write_text("class Broken(:\n")
    _, report = analyze(workdir)
    assert codes(report.findings) == ["ANA008", "ANA009"]
    assert report.payload["agent_class"] is None


def test_no_agent_class_and_several_candidates(tmp_path):
    workdir = downloaded("unknown_resource", tmp_path)
    entry = workdir / "original_mlflow_model" / "agent.py"
    entry.write_text("def helper():\n    return 1\n")
    _, report = analyze(workdir)
    assert "ANA003" in codes(report.findings) and report.status == "error"

    entry.write_text(textwrap.dedent("""\
        from mlflow.pyfunc import ChatModel, ResponsesAgent

        class Old(ChatModel):
            def predict(self, context, messages, params):
                return None

        class New(ResponsesAgent):
            def predict(self, request):
                return None
        """))
    _, report = analyze(workdir)
    assert report.payload["agent_class"]["name"] == "New"  # the most specific interface wins
    assert report.payload["agent_class"]["found_by"] == "base_class"
    assert report.payload["candidate_classes"] == ["New", "Old"]
    assert "ANA004" in codes(report.findings)


def test_a_missing_download_is_an_error_with_the_fix(tmp_path):
    with pytest.raises(MigrateError) as error:
        analyze(tmp_path)
    assert "migrate download" in error.value.fix
    assert not (tmp_path / "migration").exists()


def test_a_broken_mlmodel_is_an_error_with_the_fix(tmp_path):
    workdir = downloaded("unknown_resource", tmp_path)
    (workdir / "original_mlflow_model" / "MLmodel").write_text("flavors: [unclosed\n")
    with pytest.raises(MigrateError, match="not valid YAML") as error:
        analyze(workdir)
    assert "migrate download" in error.value.fix


def test_requirements_lines_are_parsed_by_kind():
    entries = parse_requirements(textwrap.dedent("""\
        # pinned by mlflow
        mlflow[databricks]==3.17.2 ; python_version >= "3.10"
        --extra-index-url https://pypi.example.com/simple
        my_pkg @ https://example.com/my_pkg-1.0.tar.gz
        ./wheels/local-1.0-py3-none-any.whl
        Databricks_OpenAI>=0.6  # inline comment
        not a requirement !!
        """))
    assert [(entry["kind"], entry["name"]) for entry in entries] == [
        ("package", "mlflow"), ("option", None), ("package", "my-pkg"), ("path", None),
        ("package", "databricks-openai"), ("invalid", None)]
    assert entries[0]["extras"] == ["databricks"] and entries[0]["marker"] == 'python_version >= "3.10"'


# ---------------------------------------------------------------------------------------------------- the check


def test_the_check_leaves_an_unreadable_report_to_migrate_check(tmp_path):
    analyzed("chat_agent", tmp_path)
    layout = MigrationLayout.for_workdir(tmp_path)
    layout.report_path("analyze").write_text("{not json")
    assert check_analyze(layout) == []  # `migrate check` reports CHK002 for it


def test_the_check_finds_a_report_edited_after_the_analysis(tmp_path):
    analyzed("all_resources", tmp_path)
    layout = MigrationLayout.for_workdir(tmp_path)
    assert check_analyze(layout) == []
    report_path = layout.report_path("analyze")
    document = json.loads(report_path.read_text())
    document["payload"]["resources"] = document["payload"]["resources"][1:]
    report_path.write_text(json.dumps(document))
    findings = check_analyze(layout)
    assert [(finding.code, finding.severity) for finding in findings] == [("ANA101", "error")]
    assert "resources" in findings[0].message and "migrate analyze" in findings[0].fix


def test_the_check_finds_a_download_changed_after_the_analysis(tmp_path):
    analyzed("responses_stream", tmp_path)
    layout = MigrationLayout.for_workdir(tmp_path)
    entry = tmp_path / "original_mlflow_model" / "responses_agent.py"
    entry.write_text(entry.read_text().replace("OpenAI()", "OpenAI(base_url='x')"))
    findings = check_analyze(layout)
    assert "ANA101" in codes(findings)
    assert any("entry_file" in finding.message or "source_files" in finding.message for finding in findings)


def app_folder_without_the_download(workdir: Path, fixture: str) -> MigrationLayout:
    """What a reviewer has: the app folder with migration/reports and migration/source, no original model."""
    model = workdir / "original_mlflow_model"
    app = workdir.parent / "review" / "my-agent"
    (app / "agent_server").mkdir(parents=True)
    source = app / "migration" / "source"
    source.mkdir(parents=True)
    for name in ("MLmodel", "input_example.json", "requirements.txt"):
        if (model / name).is_file():
            shutil.copy2(model / name, source / name)
    # The shape scripts/source_facts.py writes: {"files": {path: {"sha256", "bytes"}}}.
    files = {path: {"sha256": digest, "bytes": (model / path).stat().st_size}
             for path, digest in tree_hashes(model).items()}
    (source / "manifest.json").write_text(json.dumps({"files": files}))
    (app / "migration" / "reports").mkdir()
    shutil.copy2(workdir / "migration" / "reports" / "analyze.json", app / "migration" / "reports" / "analyze.json")
    return MigrationLayout.for_app(app)


def test_the_check_runs_from_the_app_folder_alone(tmp_path):
    workdir = tmp_path / "work"
    analyzed("all_resources", workdir)
    layout = app_folder_without_the_download(workdir, "all_resources")
    assert not layout.original.exists()
    assert check_analyze(layout) == []

    report_path = layout.report_path("analyze")
    document = json.loads(report_path.read_text())
    document["payload"]["auth_policy"]["user_api_scopes"] = ["sql"]
    document["payload"]["task"] = "agent/v2/chat"
    report_path.write_text(json.dumps(document))
    findings = check_analyze(layout)
    assert codes(findings) == ["ANA101", "ANA101"]
    assert {finding.message.split(" does not")[0] for finding in findings} == {
        "the report's task", "the report's auth_policy"}


def test_the_check_from_the_app_folder_finds_a_source_file_the_download_does_not_have(tmp_path):
    workdir = tmp_path / "work"
    analyzed("code_subpackage", workdir)
    layout = app_folder_without_the_download(workdir, "code_subpackage")
    manifest = layout.source / "manifest.json"
    files = json.loads(manifest.read_text())["files"]
    files["code/mypkg/base.py"]["sha256"] = "0" * 64
    manifest.write_text(json.dumps({"files": files}))
    findings = check_analyze(layout)
    assert [(finding.code, "code/mypkg/base.py" in finding.message) for finding in findings] == [("ANA103", True)]

    (layout.source / "MLmodel").unlink()
    assert codes(check_analyze(layout)) == ["ANA102"]


# ---------------------------------------------------------------------------------------------------- real MLflow


LOGGED_AGENT = '''\
import time

import mlflow
from mlflow.pyfunc import ResponsesAgent
from mlflow.types.responses import ResponsesAgentResponse, ResponsesAgentStreamEvent

from shop.tools import describe


class ShopAgent(ResponsesAgent):
    def load_context(self, context):
        self.prompt = open(context.artifacts["prompt"]).read()

    def predict(self, request):
        items = [event.item for event in self.predict_stream(request) if event.type == "response.output_item.done"]
        return ResponsesAgentResponse(output=items)

    def predict_stream(self, request):
        time.sleep(0)
        item = self.create_text_output_item(describe(self.prompt), "m1")
        yield ResponsesAgentStreamEvent(type="response.output_item.done", item=item)


mlflow.models.set_model(ShopAgent())
'''

LOGGING_SCRIPT = '''\
import json, sys
from pathlib import Path

import mlflow
from mlflow.models.auth_policy import AuthPolicy, SystemAuthPolicy, UserAuthPolicy
from mlflow.models.resources import DatabricksGenieSpace, DatabricksServingEndpoint

here = Path(sys.argv[1])
sys.path.insert(0, str(here / "src"))  # as the author's checkout: the agent file imports its code_paths package
mlflow.set_tracking_uri(f"sqlite:///{here / 'mlflow.db'}")
mlflow.set_experiment(experiment_id=mlflow.create_experiment("analyze", artifact_location=(here / "store").as_uri()))
policy = AuthPolicy(
    system_auth_policy=SystemAuthPolicy([DatabricksServingEndpoint("databricks-claude")]),
    user_auth_policy=UserAuthPolicy(["dashboards.genie"]),
)
with mlflow.start_run():
    info = mlflow.pyfunc.log_model(
        name="agent", python_model=str(here / "src" / "shop_agent.py"), code_paths=[str(here / "src" / "shop")],
        artifacts={"prompt": str(here / "src" / "prompt.txt")},
        input_example={"input": [{"role": "user", "content": "what do you sell?"}]},
        pip_requirements=["mlflow==3.17.2", "openai>=1.60"], auth_policy=policy,
    )
mlflow.artifacts.download_artifacts(info.model_uri, dst_path=str(here / "work" / "original_mlflow_model"))
'''


@pytest.mark.e2e  # logs a real model in its own interpreter
def test_analysis_of_a_model_that_mlflow_really_logged(tmp_path):
    source = tmp_path / "src"
    (source / "shop").mkdir(parents=True)
    (source / "shop_agent.py").write_text(LOGGED_AGENT)
    (source / "shop" / "__init__.py").write_text("")
    (source / "shop" / "tools.py").write_text("from .catalog import ITEMS\n\n\ndef describe(prompt):\n"
                                              "    return prompt + ', '.join(ITEMS)\n")
    (source / "shop" / "catalog.py").write_text("ITEMS = ['tea', 'cups']\n")
    (source / "prompt.txt").write_text("We sell: ")
    (tmp_path / "log_model.py").write_text(LOGGING_SCRIPT)
    # Logging runs the agent file (set_model), so it happens in its own process, as loading would.
    completed = subprocess.run([sys.executable, str(tmp_path / "log_model.py"), str(tmp_path)],
                               capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert completed.returncode == 0, completed.stderr[-3000:]

    workdir = tmp_path / "work"
    layout, report = analyze(workdir)
    write_report(layout, report)
    payload = report.payload
    assert payload["model_kind"] == "models-from-code"
    assert payload["loader_module"] == "mlflow.pyfunc.loaders.code_model"
    assert payload["entry_file"]["path"] == "shop_agent.py" and payload["entry_file"]["exists"]
    assert payload["task"] == "agent/v1/responses"
    agent = payload["agent_class"]
    assert (agent["name"], agent["base"]) == ("ShopAgent", "ResponsesAgent")
    assert agent["methods"]["predict"]["calls_predict_stream"]
    assert agent["methods"]["load_context"]["attributes"] == ["prompt"]
    assert {module["path"] for module in payload["code"]["modules"]} == {
        "code/shop/__init__.py", "code/shop/tools.py", "code/shop/catalog.py"}
    edges = {(edge["path"], edge["module"]): edge["resolved"] for edge in payload["local_imports"]}
    assert edges[("shop_agent.py", "shop.tools")] == ["code/shop/tools.py"]
    assert edges[("code/shop/tools.py", ".catalog")] == ["code/shop/catalog.py"]
    prompt = payload["artifacts"]["declared"][0]
    assert (prompt["key"], prompt["path"], prompt["exists"]) == ("prompt", "artifacts/prompt.txt", True)
    assert [read["line"] for read in prompt["read_at"]] == [12]
    assert [(resource["type"], resource["name"], resource["declared_in"]) for resource in payload["resources"]] == [
        ("serving_endpoint", "databricks-claude", "auth_policy")]
    assert payload["auth_policy"]["user_api_scopes"] == ["dashboards.genie"]
    assert [entry["name"] for entry in payload["requirements"]] == ["mlflow", "openai"]
    assert payload["python_version"]["source"] == "python_env.yaml"
    assert payload["python_version"]["version"] == payload["python_version"]["mlmodel"]
    assert payload["input_example"]["present"] and payload["input_example"]["format"] == "responses"
    assert [call["call"] for call in payload["blocking_calls"]] == ["time.sleep"]
    assert report.findings == []
    assert check_analyze(layout) == []


def test_run_writes_the_report_and_exits_non_zero_only_on_errors(tmp_path, capsys):
    from scripts import cli

    assert cli.main(["analyze", "--workdir", str(downloaded("chat_agent", tmp_path / "ok"))]) == 0  # a warning only
    assert (tmp_path / "ok" / "migration" / "reports" / "analyze.json").is_file()
    assert cli.main(["analyze", "--workdir", str(downloaded("pickled", tmp_path / "pickled"))]) == 1
    assert (tmp_path / "pickled" / "migration" / "reports" / "analyze.json").is_file()
    assert "error: [ANA001]" in capsys.readouterr().out


def test_the_schema_refuses_a_payload_outside_the_contract(tmp_path):
    analyzed("langgraph_state", tmp_path)
    document = read_report(MigrationLayout.for_workdir(tmp_path), "analyze")
    assert validation_errors(document, "analyze") == []
    for path, value in [(("model_kind",), "notebook"), (("agent_class", "base"), "Agent"),
                        (("frameworks", 0, "name"), "crewai"), (("blocking_calls", 0, "kind"), "io"),
                        (("resources", 0, "declared_in"), "somewhere")]:
        broken = json.loads(json.dumps(document))
        target = broken["payload"]
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        assert validation_errors(broken, "analyze"), path
    del document["payload"]["state"]
    assert any("state" in line for line in validation_errors(document, "analyze"))


def test_the_check_finds_an_agent_class_the_entry_file_does_not_define_there(tmp_path):
    """The check reads the entry file itself: a report naming another class (or line) is caught."""
    analyzed("responses_stream", tmp_path)
    layout = MigrationLayout.for_workdir(tmp_path)
    report_path = layout.report_path("analyze")
    document = json.loads(report_path.read_text())
    document["payload"]["agent_class"]["name"] = "SomeOtherAgent"
    report_path.write_text(json.dumps(document))
    findings = check_analyze(layout)
    assert [(finding.code, "SomeOtherAgent" in finding.message) for finding in findings] == [("ANA104", True)]
