"""`migrate resources --workers N` writes `start-server --workers N` into the app's command, and the bundle
check refuses more than one worker when the agent keeps state in process memory (RES040)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from checks.app_command import server_workers
from checks.resources import check_resources
from scripts.core.layout import MigrationLayout
from tests.steps import map_into_bundle, scaffold

CORPUS = Path(__file__).parent / "fixtures" / "agents"
IN_MEMORY = '''
from langgraph.checkpoint.memory import MemorySaver

CHECKPOINTS = MemorySaver()  # conversations kept in this process's memory
'''


def app_for(tmp_path: Path, in_memory: bool) -> Path:
    from scripts.analyze import analyze
    from tests.steps import written

    workdir = tmp_path / "work"
    shutil.copytree(CORPUS / "stream_agent", workdir / "original_mlflow_model")
    (workdir / "migration" / "source").mkdir(parents=True)
    if in_memory:
        entry = next((workdir / "original_mlflow_model").glob("*.py"))
        entry.write_text(entry.read_text() + IN_MEMORY)
    written(analyze(workdir)[1])
    scaffold(workdir, "workers-app", force=False)
    app = workdir / "workers-app"
    # What download would have put there: the MLmodel the resources step maps.
    (app / "migration" / "source").mkdir(parents=True, exist_ok=True)
    shutil.copy(workdir / "original_mlflow_model" / "MLmodel", app / "migration" / "source" / "MLmodel")
    return app


def command_of(app: Path) -> str:
    return next(line for line in (app / "databricks.yml").read_text().splitlines() if "command:" in line).strip()


def codes(app: Path) -> set[str]:
    return {finding.code for finding in check_resources(MigrationLayout.for_app(app))}


@pytest.mark.parametrize("in_memory", [False, True])
def test_more_than_one_worker_needs_an_agent_without_process_memory(tmp_path, in_memory):
    app = app_for(tmp_path, in_memory)
    map_into_bundle(app.parent, app, 2)
    assert command_of(app) == 'command: ["uv", "run", "start-server", "--workers", "2"]'
    assert ("RES040" in codes(app)) is in_memory
    map_into_bundle(app.parent, app, 1)  # back to one process, said in the command, and the error is gone
    assert command_of(app) == 'command: ["uv", "run", "start-server", "--workers", "1"]'
    assert "RES040" not in codes(app)


@pytest.mark.parametrize("in_memory", [False, True])
def test_by_default_a_stateless_agent_gets_one_worker_per_vcpu_and_a_stateful_one_a_single_process(tmp_path,
                                                                                                   in_memory):
    app = app_for(tmp_path, in_memory)
    report = map_into_bundle(app.parent, app)
    workers = report.payload["server_workers"]
    if in_memory:  # one process, the command as the scaffold wrote it
        assert command_of(app) == 'command: ["uv", "run", "start-server"]'
        assert workers["count"] == 1 and "keeps state in process memory" in workers["reason"]
    else:  # Medium, the default compute size: 2 vCPU
        assert command_of(app) == 'command: ["uv", "run", "start-server", "--workers", "2"]'
        assert workers == {"count": 2, "chosen": "default", "reason": workers["reason"]}
    assert "RES040" not in codes(app)


def test_a_chosen_count_is_kept_and_a_larger_compute_size_gets_more_workers(tmp_path):
    app = app_for(tmp_path, in_memory=False)
    map_into_bundle(app.parent, app, 1)
    report = map_into_bundle(app.parent, app)  # a re-run keeps what the command says
    assert report.payload["server_workers"]["chosen"] == "kept"
    assert command_of(app) == 'command: ["uv", "run", "start-server", "--workers", "1"]'

    large = app_for(tmp_path / "large", in_memory=False)
    bundle = large / "databricks.yml"
    text = bundle.read_text()
    assert text.count("      source_code_path: .\n") == 1
    bundle.write_text(text.replace("      source_code_path: .\n", "      source_code_path: .\n      compute_size: LARGE\n"))
    map_into_bundle(large.parent, large)
    assert command_of(large) == 'command: ["uv", "run", "start-server", "--workers", "4"]'


def test_without_the_analysis_the_default_is_one_process(tmp_path):
    app = app_for(tmp_path, in_memory=False)
    (app / "migration" / "reports" / "analyze.json").unlink()
    report = map_into_bundle(app.parent, app)
    assert command_of(app) == 'command: ["uv", "run", "start-server"]'
    assert "without the analysis" in report.payload["server_workers"]["reason"]


def test_without_the_analysis_more_workers_are_unverified(tmp_path):
    app = app_for(tmp_path, in_memory=False)
    map_into_bundle(app.parent, app, 2)
    (app / "migration" / "reports" / "analyze.json").unlink()
    assert "RES041" in codes(app)


def test_the_workers_are_read_from_the_command():
    assert server_workers(["uv", "run", "start-server"]) == 1
    assert server_workers(["uv", "run", "start-server", "--workers", "3"]) == 3
    assert server_workers(["uv", "run", "start-server", "--workers=2"]) == 2
    assert server_workers(None) == 1


# ---------------------------------------------------------------------------------------------------- e2e: serving

LOOP_AT_IMPORT_AGENT = '''
import asyncio
import json
import os

from mlflow.genai.agent_server import invoke


async def list_tools():
    return ["word_count"]


TOOLS = asyncio.run(list_tools())  # what agents loading MCP tools at import do: fails inside a running loop

with open(os.environ["IMPORT_LOG"], "a") as log:
    log.write(json.dumps({"pid": os.getpid(), "tools": TOOLS}) + "\\n")


@invoke()
async def handle(request):
    return {"output": []}
'''
# What `uv run start-server` runs: the console script uv writes for `[project.scripts]`.
CONSOLE_SCRIPT = "import sys\nfrom agent_server.start_server import main\nif __name__ == '__main__':\n    sys.exit(main())\n"


@pytest.mark.e2e
def test_start_server_with_two_workers_loads_the_agent_in_each_worker_outside_its_loop_and_not_in_the_supervisor(
        tmp_path):
    """As Databricks Apps runs a Medium app (`uv run start-server --workers 2`): each worker imports the agent
    once, before its event loop runs (an agent calling asyncio.run at import would fail in every worker, while
    smoke's single process passed), and the supervisor, which serves nothing, imports nothing."""
    import json
    import os
    import sys

    import httpx

    from scripts import app_process

    app = app_for(tmp_path, in_memory=False)
    (app / "agent_server" / "agent.py").write_text(LOOP_AT_IMPORT_AGENT)
    (app / "start-server").write_text(CONSOLE_SCRIPT)
    import_log = tmp_path / "imports.jsonl"
    # No traces: two workers creating one SQLite tracking store at once is not what is tested here.
    env = {**os.environ, "IMPORT_LOG": str(import_log), "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'traces.db'}",
           "MLFLOW_TRACE_SAMPLING_RATIO": "0"}
    command = app_process.ServerCommand(
        lambda port: [sys.executable, "start-server", "--host", app_process.LOCALHOST, "--port", str(port),
                      "--workers", "2"], app, app_process.local_run_environment(env))
    with app_process.serving(command, start_timeout=300) as server:
        answers = [httpx.post(f"{server.url}/invocations", json={"input": []}, timeout=60) for _ in range(4)]
        supervisor = server.pid
    assert [answer.status_code for answer in answers] == [200] * 4, answers[-1].text
    loads = [json.loads(line) for line in import_log.read_text().splitlines()]
    assert len(loads) == 2 and len({load["pid"] for load in loads}) == 2, loads  # once in each worker
    assert supervisor not in {load["pid"] for load in loads}
    assert all(load["tools"] == ["word_count"] for load in loads)
