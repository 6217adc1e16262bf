"""`migrate code` on the fixture corpus: both modes, the code check, writes that are safe, and (e2e) the app answering."""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import yaml

from checks import code as code_check
from checks.code import check_code
from scripts import processes
from scripts.core import atomic
from tests.steps import migrate_code
from scripts.core.errors import MigrateError
from scripts.core.layout import MigrationLayout
from scripts.analyze import analyze
from scripts.core.reports import write_report
from tests.steps import scaffold
from scripts.model.blocking import blocking_calls
from scripts.model.parsed_modules import parse_app_modules
from scripts.transform.module_rewrite import rewrite_module
from scripts.transform.modules import CodeTree

pytestmark = pytest.mark.serial_minutes(6)  # run first under xdist: tests/conftest.py

CORPUS = Path(__file__).parent / "fixtures" / "agents"
APP = "corpus-app"
# Which path the transform takes on each corpus agent.
EXPECTED = {
    "stream_agent": "extract",
    "stateful_agent": "wrapper",  # predict writes self.calls: built per request (cheap to build)
    "class_client": "extract",
    "yaml_config": "extract",
    "subpackage": "extract",
    "langgraph_stream": "extract",
    "openai_tools": "wrapper",
    "chat_agent": "chat_wrapper",
    "chat_agent_stream": "chat_wrapper",
}
# A ChatAgent's app is the same in both modes (its calls run in worker threads either way: test below), so
# serving its sync app proves both; chat_agent_stream is served by its own test, which asks more of it.
SERVED = [(agent, mode) for agent, path in EXPECTED.items() for mode in ("sync", "async")
          if path != "not_converted" and not (path == "chat_wrapper" and mode == "async")
          and agent != "chat_agent_stream"]


@pytest.fixture(autouse=True)
def workspace_env(monkeypatch):
    """The corpus agents build their clients at import from these; nothing is called in the quick tests."""
    monkeypatch.setenv("DATABRICKS_HOST", os.environ.get("DATABRICKS_HOST", "http://127.0.0.1:9"))
    monkeypatch.setenv("DATABRICKS_TOKEN", os.environ.get("DATABRICKS_TOKEN", "not-a-real-token"))


def tree_digest(folder: Path) -> dict[str, str]:
    return {path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*")) if path.is_file()}


def prepare(tmp_path: Path, agent: str) -> Path:
    """A working directory holding the agent as a download, scaffolded into an app; returns the workdir."""
    workdir = tmp_path / "work"
    shutil.copytree(CORPUS / agent, workdir / "original_mlflow_model")
    (workdir / "migration" / "source").mkdir(parents=True)
    write_report(*analyze(workdir))  # the code step migrates the class analyze found
    scaffold(workdir, APP, force=False)
    return workdir


def migrated(tmp_path: Path, agent: str, mode: str):
    workdir = prepare(tmp_path, agent)
    report = migrate_code(workdir, None, mode, force=False)
    return workdir, workdir / APP, report


def static_check(app: Path) -> list:
    """`check_code` without its import probe: the probe starts an interpreter that imports MLflow and the agent
    (~10 s of CPU each), so it runs in the e2e test that serves the same app, which asserts the whole check."""
    original = code_check.import_findings
    code_check.import_findings = lambda app, external: []
    try:
        return check_code(MigrationLayout.for_app(app))
    finally:
        code_check.import_findings = original


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Every corpus agent migrated in both modes, and its static code check."""
    apps = {}
    for agent in EXPECTED:
        for mode in ("sync", "async"):
            _, app, report = migrated(tmp_path_factory.mktemp(f"{agent}-{mode}"), agent, mode)
            apps[agent, mode] = (app, report, static_check(app))
    return apps


def assert_check_of_the_corpus_app(agent: str, mode: str, report, findings) -> None:
    """What `migrate code` reports and what the code check finds on a corpus app, in both modes."""
    assert report.payload["transform"] == EXPECTED[agent]
    errors = [finding for finding in findings if finding.severity == "error"]
    if EXPECTED[agent] == "not_converted":
        assert {finding.code for finding in report.findings} == {"COD005"}
        assert {finding.code for finding in errors} == {"COD005"}
        return
    if EXPECTED[agent] == "chat_wrapper":
        # A ChatAgent runs in worker threads in both modes: nothing blocks the loop, nothing is left to convert.
        assert [(finding.code, finding.severity) for finding in report.findings] == [("COD005", "warning")]
        assert errors == [] and report.payload["blocking_calls"] == []
        assert [(finding.code, finding.severity) for finding in findings] == [("COD005", "info")]
    elif mode == "sync":
        assert errors == [], errors
        assert report.payload["blocking_calls"] == []
    else:
        # Async mode leaves the conversion of blocking calls to the assistant: the check fails on exactly the
        # call sites the report lists, and on nothing else.
        assert {finding.code for finding in errors} <= {"COD010"}
        listed = {(f"{APP}/{site['path']}:{site['line']}") for site in report.payload["blocking_calls"]}
        assert {finding.path for finding in errors} == listed
        if "COD101" in {finding.code for finding in report.findings}:
            # A kept sync predict (no predict_stream) runs in a worker thread: its sync LLM call blocks nothing.
            assert not listed
        else:
            assert listed, "every corpus agent calls an LLM with a sync client"


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("agent", list(EXPECTED))
def test_corpus_agent_migrates_and_passes_the_static_checks(corpus, agent, mode):
    app, report, findings = corpus[agent, mode]
    assert_check_of_the_corpus_app(agent, mode, report, findings)
    if EXPECTED[agent] == "not_converted":
        return
    entry = (app / "agent_server" / "agent.py").read_text()
    assert "set_model" not in entry
    assert "async def" in entry and "@invoke()" in entry and "@stream()" in entry
    if EXPECTED[agent] == "extract":
        assert "class " not in entry.split("# The agent, formerly class")[1].split("@invoke")[0] or agent == "langgraph_stream"


@pytest.mark.parametrize("agent", [agent for agent, path in EXPECTED.items() if path == "chat_wrapper"])
def test_a_chat_agents_app_is_the_same_in_both_modes(corpus, agent):
    """What lets the e2e tests serve a ChatAgent's sync app only."""
    (sync_app, _, _), (async_app, _, _) = corpus[agent, "sync"], corpus[agent, "async"]
    assert tree_digest(sync_app / "agent_server") == tree_digest(async_app / "agent_server")


def test_extract_keeps_predict_calling_predict_stream_and_comments(tmp_path):
    _, app, report = migrated(tmp_path, "stream_agent", "sync")
    entry = (app / "agent_server" / "agent.py").read_text()
    assert report.payload["predict_calls_predict_stream"] is True
    assert "for event in predict_stream(request)" in entry
    assert "# One client for the whole process" in entry
    assert "def predict(request: ResponsesAgentRequest) -> ResponsesAgentResponse:" in entry  # params dropped
    assert "run_sync(predict, request)" in entry and "iterate_sync(predict_stream, request)" in entry
    assert report.payload["state"] == {"client": "client"}


def test_async_mode_lists_blocking_calls_with_their_async_equivalent(tmp_path):
    _, app, report = migrated(tmp_path, "class_client", "async")
    kinds = {site["kind"] for site in report.payload["blocking_calls"]}
    assert {"llm-call", "sleep"} <= kinds
    sleep = next(site for site in report.payload["blocking_calls"] if site["kind"] == "sleep")
    assert "asyncio.sleep" in sleep["fix"] and sleep["function"] == "ask"
    assert any(finding.code == "COD009" for finding in report.findings)  # predict not carried over
    entry = (app / "agent_server" / "agent.py").read_text()
    assert "async def predict_stream(request: ResponsesAgentRequest):" in entry


def test_async_mode_turns_yield_from_into_a_loop(tmp_path):
    _, app, _ = migrated(tmp_path, "langgraph_stream", "async")
    entry = (app / "agent_server" / "agent.py").read_text()
    assert "yield from" not in entry
    assert "for _item in updates_to_events(event):" in entry


def test_code_tree_and_artifacts_land_in_agent_server(tmp_path):
    _, app, report = migrated(tmp_path, "subpackage", "sync")
    package = app / "agent_server"
    assert (package / "agent_tools" / "__init__.py").read_text().startswith('"""Tools of the agent')
    assert "from .formatting import as_bullets" in (package / "agent_tools" / "tools.py").read_text()
    entry = (package / "agent.py").read_text()
    assert "import agent_server.prompts as prompts" in entry
    assert "from agent_server.agent_tools import TOOLS, run_tool" in entry
    assert "import agent_server.agent_tools.formatting\nfrom agent_server import agent_tools" in entry

    _, app, report = migrated(tmp_path / "yaml", "yaml_config", "sync")
    package = app / "agent_server"
    assert (package / "artifacts" / "prompts" / "system.txt").is_file()
    entry = (package / "agent.py").read_text()
    assert 'open(str(Path(__file__).parent / "artifacts" / "config.yaml"))' in entry
    assert 'Path(__file__).parent / "artifacts" / "footer.txt"' in entry
    targets = {reference["target"] for reference in report.payload["artifact_references"]}
    assert targets == {"agent_server/artifacts/config.yaml", "agent_server/artifacts/prompts/system.txt",
                       "agent_server/artifacts/footer.txt"}


def test_wrapper_mode_says_why(tmp_path):
    _, app, report = migrated(tmp_path, "openai_tools", "sync")
    assert "inheritance chain" in report.payload["wrapper_reason"]
    assert [finding.code for finding in report.findings] == ["COD004"]
    entry = (app / "agent_server" / "agent.py").read_text()
    assert "AGENT = WeatherAgent()" in entry and "iterate_sync(AGENT.predict_stream, request)" in entry


def test_the_original_is_never_modified_and_rerunning_is_safe(tmp_path):
    workdir = prepare(tmp_path, "yaml_config")
    before = tree_digest(workdir / "original_mlflow_model")
    migrate_code(workdir, None, "sync", force=False)
    first = tree_digest(workdir / APP / "agent_server")
    migrate_code(workdir, None, "sync", force=False)
    assert tree_digest(workdir / APP / "agent_server") == first
    migrate_code(workdir, None, "async", force=False)  # switching mode rewrites what this step wrote
    assert tree_digest(workdir / "original_mlflow_model") == before


def test_a_user_edited_agent_is_not_overwritten_without_force(tmp_path):
    workdir = prepare(tmp_path, "stream_agent")
    migrate_code(workdir, None, "sync", force=False)
    entry = workdir / APP / "agent_server" / "agent.py"
    entry.write_text(entry.read_text() + "\n# my change\n")
    (workdir / APP / "agent_server" / "my_tool.py").write_text("X = 1\n")
    with pytest.raises(MigrateError) as refused:
        migrate_code(workdir, None, "async", force=False)
    assert refused.value.code == "COD003"
    assert entry.read_text().endswith("# my change\n")
    migrate_code(workdir, None, "async", force=True)
    assert "# my change" not in entry.read_text()
    assert (workdir / APP / "agent_server" / "my_tool.py").read_text() == "X = 1\n"  # not ours: kept


def test_an_interrupted_write_leaves_the_old_agent_server(tmp_path, monkeypatch):
    """Ctrl-C at the worst moment: the old agent_server is renamed aside and the new one not yet in its place."""
    workdir = prepare(tmp_path, "stream_agent")
    before = tree_digest(workdir / APP / "agent_server")
    real_replace = os.replace

    def interrupted_on_the_staged_folder(source, destination):
        if str(source).endswith(".partial"):
            raise KeyboardInterrupt
        real_replace(source, destination)

    monkeypatch.setattr(atomic.os, "replace", interrupted_on_the_staged_folder)
    with pytest.raises(KeyboardInterrupt):
        migrate_code(workdir, None, "sync", force=False)
    monkeypatch.undo()
    assert tree_digest(workdir / APP / "agent_server") == before
    assert [path.name for path in (workdir / APP).iterdir() if path.name.startswith(".agent_server.")] == []


def test_replace_dir_puts_the_old_folder_back_when_the_new_one_cannot_move(tmp_path):
    """No stand-in for anything: the staged folder is gone by the time it is moved, so the real os.replace fails."""
    target = tmp_path / "agent_server"
    (target / "tools").mkdir(parents=True)
    (target / "agent.py").write_text("OLD = True\n")
    (target / "tools" / "one.py").write_text("ONE = 1\n")
    before = tree_digest(target)
    staged = atomic.staging_dir(target)
    (staged / "agent.py").write_text("NEW = True\n")
    shutil.rmtree(staged)
    with pytest.raises(FileNotFoundError):
        atomic.replace_dir(staged, target)
    assert tree_digest(target) == before
    assert sorted(path.name for path in tmp_path.iterdir()) == ["agent_server"]  # nothing left aside

    staged = atomic.staging_dir(target)
    (staged / "agent.py").write_text("NEW = True\n")
    atomic.replace_dir(staged, target)
    assert tree_digest(target) == {"agent.py": tree_digest(target)["agent.py"]}
    assert (target / "agent.py").read_text() == "NEW = True\n"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["agent_server"]


def test_a_pickled_model_is_refused_with_a_fix(tmp_path):
    workdir = prepare(tmp_path, "stream_agent")
    mlmodel = workdir / "original_mlflow_model" / "MLmodel"
    mlmodel.write_text(mlmodel.read_text().replace("model_code_path", "python_model"))
    (workdir / "original_mlflow_model" / "python_model.pkl").write_bytes(b"\x80\x04")
    with pytest.raises(MigrateError) as stale:
        migrate_code(workdir, None, "sync", force=False)
    assert stale.value.code == "COD020"  # MLmodel changed since analyze read it
    write_report(*analyze(workdir))
    with pytest.raises(MigrateError) as refused:
        migrate_code(workdir, None, "sync", force=False)
    assert refused.value.code == "COD001" and "models-from-code" in refused.value.fix


def test_imports_between_copied_modules_are_rewritten_by_syntax_tree():
    tree = CodeTree(top_level={"helpers": "helpers", "agent": "agent_module"})
    source = 'import os, helpers  # keep me\nfrom code.helpers import f\nimport agent\ntext = "helpers"\n'
    rewritten = rewrite_module(source, tree, {}, "agent_server/agent.py").code
    assert rewritten == ('import os  # keep me\nimport agent_server.helpers as helpers\n'
                         'from agent_server.helpers import f\nimport agent_server.agent_module as agent\n'
                         'text = "helpers"\n')


def test_sync_bridge_runs_calls_concurrently_with_the_callers_context():
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from agent_server import sync_bridge

    request_id = contextvars.ContextVar("request_id")
    parties = 8
    barrier = threading.Barrier(parties, timeout=30)  # only passes if all calls are in flight at once

    def handle(number):
        barrier.wait()
        return request_id.get(), number

    def stream(number):
        yield request_id.get()
        barrier.wait()
        yield number

    async def one(number):
        request_id.set(f"req-{number}")
        return await sync_bridge.run_sync(handle, number)

    async def one_stream(number):
        request_id.set(f"req-{number}")
        return [item async for item in sync_bridge.iterate_sync(stream, number)]

    async def main():
        calls = await asyncio.gather(*(one(number) for number in range(parties)))
        streams = await asyncio.gather(*(one_stream(number) for number in range(parties)))
        return calls, streams

    calls, streams = asyncio.run(main())
    assert calls == [(f"req-{number}", number) for number in range(parties)]
    assert streams == [[f"req-{number}", number] for number in range(parties)]


# ---------------------------------------------------------------------------------------------------- e2e


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_model_config_calls_point_at_the_config_file_the_step_writes():
    source = ('from mlflow.models import ModelConfig\nimport mlflow\n\n'
              'config = ModelConfig(development_config="config.yml")\n'
              'other = mlflow.models.ModelConfig()\n')
    rewrite = rewrite_module(source, CodeTree(), {}, "agent_server/tools/settings.py", model_config=True)
    assert 'config = ModelConfig(development_config=str(Path(__file__).parent.parent / "model_config.yml"))' \
        in rewrite.code
    assert 'other = mlflow.models.ModelConfig(development_config=str(Path(__file__).parent.parent / ' \
           '"model_config.yml"))' in rewrite.code
    assert "from pathlib import Path" in rewrite.code
    assert [site.line for site in rewrite.model_config] == [4, 5]
    # Logged without a model config, MLflow would have refused ModelConfig too: the call is left alone.
    assert rewrite_module(source, CodeTree(), {}, "agent_server/agent.py").code == source


def migrated_with_a_logged_model_config(tmp_path: Path):
    """openai_tools as logged with a model config in MLmodel and a ModelConfig read at import, migrated (sync)."""
    workdir = prepare(tmp_path, "openai_tools")
    original = workdir / "original_mlflow_model"
    mlmodel = original / "MLmodel"
    mlmodel.write_text(mlmodel.read_text().replace(
        "  python_function:\n", "  python_function:\n    config:\n      llm_endpoint: my-llm\n      top_k: 2\n", 1))
    agent = original / "agent.py"
    agent.write_text(agent.read_text().replace(
        "import mlflow\n", "import mlflow\nfrom mlflow.models import ModelConfig\n\n"
        "SETTINGS = ModelConfig(development_config='dev.yml').to_dict()\n", 1))
    write_report(*analyze(workdir))
    return workdir, migrate_code(workdir, None, "sync", force=False)


def test_a_logged_model_config_is_written_for_the_agent_and_its_load_context(tmp_path):
    workdir, report = migrated_with_a_logged_model_config(tmp_path)
    package = workdir / APP / "agent_server"
    assert yaml.safe_load((package / "model_config.yml").read_text()) == {"llm_endpoint": "my-llm", "top_k": 2}
    entry = (package / "agent.py").read_text()
    assert "ModelConfig(development_config='dev.yml')" not in entry
    # Wrapper mode: load_context gets the logged config as context.model_config, as Model Serving gave it.
    assert ('model_config=ModelConfig(development_config=str(Path(__file__).parent / "model_config.yml"))'
            '.to_dict()))') in entry
    assert {"path": "agent_server/agent.py", "line": 7, "reference": "ModelConfig(development_config='dev.yml')",
            "target": "agent_server/model_config.yml"} in report.payload["artifact_references"]
    sources = {written["path"]: written["source"] for written in report.payload["files"]}
    assert sources["agent_server/model_config.yml"] == "MLmodel"
    assert [finding for finding in static_check(workdir / APP) if finding.severity == "error"] == []


@pytest.mark.e2e
def test_an_agent_reading_its_logged_model_config_imports_in_the_whole_check(tmp_path):
    """The import probe: the migrated agent finds model_config.yml when a fresh interpreter imports it."""
    workdir, _ = migrated_with_a_logged_model_config(tmp_path)
    findings = check_code(MigrationLayout.for_app(workdir / APP))
    assert [finding for finding in findings if finding.severity == "error"] == []


def test_calls_on_a_sync_http_client_kept_in_a_name_or_attribute_block(tmp_path):
    package = tmp_path / "agent_server"
    package.mkdir()
    (package / "agent.py").write_text(
        "import httpx\n\nSHARED = httpx.Client()\n\n\n"
        "class Agent:\n"
        "    def __init__(self):\n        self.http = httpx.Client(base_url='http://llm')\n\n"
        "    def ask(self, text):\n        return self.http.post('/invocations', json={'q': text}).json()\n\n"
        "    def predict(self, request):\n        self.http.headers.update({})\n        return self.ask(request)\n\n\n"
        "AGENT = Agent()\n\n\n"
        "async def handler(request):\n    SHARED.get('/health')\n    return AGENT.predict(request)\n")
    found = {(site.call, site.kind, site.function) for site in blocking_calls(parse_app_modules(package))}
    # `self.ask` is followed inside the class; `headers.update` is not a request.
    assert found == {("SHARED.get", "http", "handler"), ("self.http.post", "http", "Agent.ask")}


@pytest.mark.e2e
def test_the_faq_example_keeps_its_config_and_lists_its_httpx_calls_in_async_mode(downloaded_example,
                                                                                 standin_workspace, monkeypatch):
    """examples/faq_agent as MLflow really logged it: a model_config in MLmodel, state built in __init__, an
    httpx client kept on self."""
    # Its __init__ builds a WorkspaceClient, which asks the workspace about itself: the check's import needs one.
    for key, value in standin_workspace.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("DATABRICKS_CONFIG_PROFILE", raising=False)
    workdir = downloaded_example("faq_agent")
    write_report(*analyze(workdir))
    scaffold(workdir, APP, force=False)
    migrate_code(workdir, None, "sync", force=False)
    package = workdir / APP / "agent_server"
    assert yaml.safe_load((package / "model_config.yml").read_text())["llm_endpoint"].startswith("databricks-")
    assert (package / "artifacts" / "faq.json").is_file()
    assert [finding for finding in check_code(MigrationLayout.for_app(workdir / APP))
            if finding.severity == "error"] == []

    report = migrate_code(workdir, None, "async", force=False)
    sites = {(site["call"], site["kind"], site["function"]): site["fix"] for site in report.payload["blocking_calls"]}
    assert set(sites) == {("self.http.stream", "http", "FaqAgent.predict_stream"),
                          ("AGENT.predict_stream", "sync-iteration", "stream_handler")}
    assert "httpx.AsyncClient" in sites["self.http.stream", "http", "FaqAgent.predict_stream"]
    # predict (which returns custom_outputs) is not what async invoke calls: the report must say so.
    # COD053: its memory is written under memory_lock, kept shared on purpose (keyed by thread id).
    assert {"COD004", "COD009", "COD010", "COD053"} == {finding.code for finding in report.findings}


def serve(app: Path, env: dict):
    port = free_port()
    process = processes.start([sys.executable, "-m", "agent_server.start_server", "--host", "127.0.0.1",
                               "--port", str(port)], cwd=app, env=env, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        if process.poll() is not None:
            raise AssertionError(f"the server exited: {process.stderr.read()}")
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return process, base
        except httpx.HTTPError:
            time.sleep(0.1)
    processes.stop(process)
    raise AssertionError("the server did not answer /health")


def responses_request(example: dict) -> dict:
    """The input example as the app takes it: a ChatAgent's `messages` are Responses `input` items as they are."""
    if "messages" in example:
        example = {"input": example["messages"], **{key: value for key, value in example.items() if key != "messages"}}
    return example


@pytest.fixture
def the_session_workspace(standin_workspace, monkeypatch):
    """The session's stand-in as the workspace, for the agents that reach it at import and for the apps."""
    for key, value in standin_workspace.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("DATABRICKS_CONFIG_PROFILE", raising=False)
    return standin_workspace


def checked_and_served(app: Path, env: dict):
    """The whole code check of `app` (import probe included) and the app's server, started side by side."""
    with ThreadPoolExecutor(max_workers=1) as pool:  # the probe's interpreter starts while the server does
        checked = pool.submit(check_code, MigrationLayout.for_app(app))
        process, base = serve(app, env)
    try:
        return checked.result(), process, base
    except BaseException:
        processes.stop(process)
        raise


@pytest.mark.e2e
@pytest.mark.parametrize(("agent", "mode"), SERVED, ids=[f"{agent}-{mode}" for agent, mode in SERVED])
def test_migrated_app_passes_the_whole_check_and_answers_its_input_example(tmp_path, agent, mode,
                                                                          the_session_workspace):
    """The whole code check, import probe included, on the app that is then served and asked."""
    _, app, report = migrated(tmp_path, agent, mode)
    example = responses_request(json.loads((CORPUS / agent / "input_example.json").read_text()))
    findings, process, base = checked_and_served(app, dict(os.environ))
    try:
        assert_check_of_the_corpus_app(agent, mode, report, findings)
        answer = httpx.post(f"{base}/invocations", json=example, timeout=60)
        assert answer.status_code == 200, answer.text
        output = answer.json()["output"]
        assert output and any(item["type"] == "message" for item in output)
        with httpx.stream("POST", f"{base}/invocations", json={**example, "stream": True}, timeout=60) as events:
            lines = [line for line in events.iter_lines() if line.startswith("data: ")]
        assert lines[-1] == "data: [DONE]"
        payloads = [json.loads(line[6:]) for line in lines[:-1]]
        assert not any("error" in payload for payload in payloads), payloads
        assert any(payload.get("type") == "response.output_item.done" for payload in payloads)
    finally:
        processes.stop(process)


@pytest.mark.e2e
def test_a_migrated_chat_agent_streams_its_tool_call_and_answer(tmp_path, the_session_workspace):
    """chat_agent_stream: predict_stream yields a tool call, its result and the answer in pieces. The whole code
    check passes on the app (in both modes: its async app is the same)."""
    _, app, report = migrated(tmp_path, "chat_agent_stream", "sync")
    assert "iterate_sync(stream_with_chat_agent, AGENT.predict_stream, request)" in \
        (app / "agent_server" / "agent.py").read_text()
    example = responses_request(json.loads((CORPUS / "chat_agent_stream" / "input_example.json").read_text()))
    env = {key: value for key, value in os.environ.items() if key != "DATABRICKS_CONFIG_PROFILE"}
    findings, process, base = checked_and_served(app, env)
    try:
        assert_check_of_the_corpus_app("chat_agent_stream", "sync", report, findings)
        answer = httpx.post(f"{base}/invocations", json=example, timeout=60).json()
        assert [item["type"] for item in answer["output"]] == ["function_call", "function_call_output", "message"]
        call, result, text = answer["output"]
        assert call["name"] == "lookup_capital" and result["call_id"] == call["call_id"]
        assert "Paris" in result["output"] and text["content"][0]["text"].startswith("stand-in answer to:")
        assert answer["custom_outputs"] == {"conversation_id": "c-1"}
        with httpx.stream("POST", f"{base}/invocations", json={**example, "stream": True}, timeout=60) as events:
            lines = [line for line in events.iter_lines() if line.startswith("data: ")]
    finally:
        processes.stop(process)
    assert lines[-1] == "data: [DONE]"
    payloads = [json.loads(line[6:]) for line in lines[:-1]]
    assert not any("error" in payload for payload in payloads), payloads
    done = [payload["item"] for payload in payloads if payload["type"] == "response.output_item.done"]
    deltas = [payload for payload in payloads if payload["type"] == "response.output_text.delta"]
    assert [item["type"] for item in done] == ["function_call", "function_call_output", "message"]
    assert len(deltas) > 1 and {delta["item_id"] for delta in deltas} == {done[2]["id"]}
    assert "".join(delta["delta"] for delta in deltas) == done[2]["content"][0]["text"] == text["content"][0]["text"]


# ---------------------------------------------------------------------------------------------------- event loops (async)

LOOP_MISUSE = {
    "asyncio.run": "import asyncio\n", "loop.run_until_complete": "import asyncio\n",
    "nest_asyncio.apply": "import asyncio\nimport nest_asyncio\n", "asyncio.get_event_loop": "import asyncio\n",
}


def loop_misuse_agent(tmp_path: Path, call: str) -> Path:
    """stream_agent with `call` in a helper method its predict_stream calls (the misuse one call away)."""
    workdir = tmp_path / "work"
    shutil.copytree(CORPUS / "stream_agent", workdir / "original_mlflow_model")
    agent = workdir / "original_mlflow_model" / "agent.py"
    statement = {"asyncio.run": "asyncio.run(asyncio.sleep(0))",
                 "loop.run_until_complete": "loop = asyncio.new_event_loop()\n        loop.run_until_complete(asyncio.sleep(0))",
                 "nest_asyncio.apply": "nest_asyncio.apply()",
                 "asyncio.get_event_loop": "asyncio.get_event_loop()"}[call]
    text = LOOP_MISUSE[call] + agent.read_text()
    text = text.replace("    def predict_stream(\n", f"    def warm_up(self):\n        {statement}\n\n    def predict_stream(\n")
    text = text.replace("        item_id = str(uuid4())\n", "        item_id = str(uuid4())\n        self.warm_up()\n")
    agent.write_text(text)
    (workdir / "migration" / "source").mkdir(parents=True)
    write_report(*analyze(workdir))
    scaffold(workdir, APP, force=False)
    return workdir


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("call", list(LOOP_MISUSE))
def test_starting_or_nesting_an_event_loop_on_the_request_path_is_an_error(tmp_path, call, mode):
    workdir = loop_misuse_agent(tmp_path, call)
    report = migrate_code(workdir, None, mode, force=False)
    errors = [finding for finding in report.findings if finding.code == "COD022"]
    assert len(errors) == 1 and errors[0].severity == "error", report.findings
    assert call.split(".")[-1] in errors[0].message and "warm_up" in errors[0].message


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_an_async_native_agent_is_served_by_its_async_methods(tmp_path, mode):
    """Its sync wrappers (asyncio.run, a loop per stream) are never called: no COD022, no loop per request."""
    _, app, report = migrated(tmp_path, "async_native", mode)
    code = (app / "agent_server" / "agent.py").read_text()
    assert [finding.code for finding in report.findings] == ["COD004", "COD100"]
    assert report.payload["blocking_calls"] == []
    if mode == "async":
        assert "return await AGENT.apredict(request)" in code
        assert "async for event in AGENT.apredict_stream(request):" in code
        assert not (app / "agent_server" / "loop_bridge.py").exists()
    else:
        assert "return await run_async(AGENT.apredict, request)" in code
        assert "async for event in iterate_async(AGENT.apredict_stream, request):" in code
        assert (app / "agent_server" / "loop_bridge.py").is_file()
    handlers = code[code.index("@invoke()"):]
    assert "AGENT.predict(" not in handlers and "AGENT.predict_stream(" not in handlers
    assert [finding for finding in static_check(app) if finding.severity == "error"] == []


def test_a_kept_sync_predict_runs_in_a_thread_in_async_mode(tmp_path):
    """A predict-only class kept in wrapper mode: its sync predict never runs on the event loop."""
    workdir = tmp_path / "work"
    shutil.copytree(CORPUS / "class_client", workdir / "original_mlflow_model")
    agent = workdir / "original_mlflow_model" / "agent.py"
    text = agent.read_text()
    agent.write_text(text[:text.index("    def predict_stream(")] + text[text.index("\n\nagent = "):]
                     .replace("agent = ClassClientAgent()", "agent = ClassClientAgent(); agent.extra = 1"))
    (workdir / "migration" / "source").mkdir(parents=True)
    write_report(*analyze(workdir))
    scaffold(workdir, APP, force=False)
    report = migrate_code(workdir, None, "async", force=False)
    code = (workdir / APP / "agent_server" / "agent.py").read_text()
    assert report.payload["transform"] == "wrapper"
    assert "return await asyncio.to_thread(AGENT.predict, request)" in code
    assert "COD101" in {finding.code for finding in report.findings}


@pytest.mark.e2e
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_an_async_native_agent_answers_like_the_original(tmp_path, mode, standin_workspace):
    """Migrated in each mode and smoke-tested against the original: same answer, streamed tokens and
    custom_outputs (which invoke's apredict returns), with no loop started per request."""
    from tests.conftest import migrate_in_process
    from tests.test_smoke import smoke_migrated

    workdir = tmp_path / "work"
    shutil.copytree(CORPUS / "async_native", workdir / "original_mlflow_model")
    (workdir / "migration" / "source").mkdir(parents=True)
    env = standin_workspace.environ()
    for argv in (["analyze"], ["scaffold", "--app-name", APP], ["code", "--mode", mode]):
        completed = migrate_in_process(*argv, "--workdir", str(workdir), env=env)
        assert completed.returncode == 0, completed.stdout + completed.stderr
    completed, report = smoke_migrated(workdir, workdir / APP, env)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert report["payload"]["parity"]["status"] == "ran" and report["payload"]["comparison"] == "exact"
    answer = json.loads(json.dumps(report["payload"]))
    assert '"engine": "async"' in json.dumps(answer) and '"session": "s-1"' in json.dumps(answer)


def test_async_mode_keeps_a_predict_that_predict_stream_calls(tmp_path):
    """dotted_tools' predict_stream streams predict's items: dropping predict (as async mode does when invoke
    collects the stream) left `predict` undefined, and the check said PASS. It stays a sync function, and its
    LLM call is listed as blocking the loop."""
    _, app, report = migrated(tmp_path, "dotted_tools", "async")
    entry = (app / "agent_server" / "agent.py").read_text()
    assert "\ndef predict(request: ResponsesAgentRequest) -> ResponsesAgentResponse:" in entry
    assert "async def predict_stream(request: ResponsesAgentRequest):" in entry
    assert [(site["function"], site["kind"]) for site in report.payload["blocking_calls"]] == [("predict", "llm-call")]
    assert "COD010" in {finding.code for finding in static_check(app) if finding.severity == "error"}
