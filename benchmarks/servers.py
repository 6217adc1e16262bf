"""The servers `concurrency.py` compares: how each app is built, and the command that serves it.

    ceiling     AgentServer with a handler that answers at once (what this machine's CPU allows)
    original    `mlflow models serve` on original_mlflow_model/, as Model Serving runs the model
    hand_sync   the hand migration a user writes from the official template's sync path: plain `def` handlers
                calling the agent (AgentServer runs them on its event loop: mlflow/mlflow#23953)
    hand_async  the template's async path: an `AsyncOpenAI` client on httpx's default transport
    sync        `migrate code --mode sync` (the agent's sync code in sync_bridge worker threads)
    sync_2w     the same app under `start-server --workers 2`
    async       `migrate code --mode async` with the conversion it asks for, on openai's aiohttp transport

Apps are built and verified by `migrate demo` (or taken from a demo's folder: --apps-from), and each is served
from its own environment, synced from the lock `migrate setup` wrote (as `uv run start-server` does on Apps), so
the benchmark measures what users get: the client library versions of the app's lock, not the harness's.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path

from scripts import app_process, processes
from scripts.demo import REGISTRY_DIR, load_example_module

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = "openai_tools"
MODES = ("ceiling", "original", "hand_sync", "hand_async", "sync", "sync_2w", "async")
# The migrated mode each hand migration is the peer of.
HAND_PEER = {"sync": "hand_sync", "sync_2w": "hand_sync", "async": "hand_async"}
GENERATED_HANDLERS = "# Served by MLflow's AgentServer"
ENVIRONMENT_OF = {"ceiling": "sync", "hand_sync": "sync", "sync_2w": "sync", "hand_async": "async"}

CEILING_AGENT = '''"""Answers at once: what AgentServer itself costs on this machine."""
from mlflow.genai.agent_server import invoke, stream
from mlflow.types.responses import ResponsesAgentResponse

ITEM = {"type": "message", "id": "m1", "role": "assistant", "content": [{"type": "output_text", "text": "ok"}]}


@invoke()
async def handle(request):
    return ResponsesAgentResponse(output=[ITEM])


@stream()
async def handle_stream(request):
    raise NotImplementedError("the ceiling measures invoke only")
    yield
'''

HAND_SYNC_HANDLERS = '''

# The hand migration: plain sync handlers, as the template's sync path writes them.
@invoke()
def hand_invoke(request: ResponsesAgentRequest) -> ResponsesAgentResponse:
    return {predict}(request)


@stream()
def hand_stream(request: ResponsesAgentRequest):
    yield from {predict_stream}(request)
'''


# The hand migrations start as the official template's start_server.py does (facts: it loads .env, imports the
# agent, serves it with AgentServer and nothing more). What `migrate`'s start_server.py adds is not theirs: the
# app's experiment set once at start, the cyclic collector off while the agent loads and start-up frozen.
HAND_START_SERVER = '''"""A hand migration's start: .env, the agent's import, AgentServer."""
import argparse

import uvicorn
from dotenv import load_dotenv
from mlflow.genai.agent_server import AgentServer

load_dotenv()

import agent_server.agent  # noqa: E402,F401  (importing registers the handlers)

app = AgentServer("ResponsesAgent").app

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=8000)
    arguments = parser.parse_args()
    uvicorn.run("agent_server.start_server:app", host=arguments.host, port=arguments.port)
'''


class BenchmarkError(RuntimeError):
    pass


def migrate(argv: list[str], env: dict) -> None:
    try:
        processes.run([sys.executable, "-m", "scripts.cli", *argv], cwd=REPO, env=env)
    except processes.CommandFailed as error:
        raise BenchmarkError(str(error)) from None


def without_fast_transport(agent_path: Path) -> None:
    """The converted async agent as the template's async path has it: httpx's default transport."""
    transport = load_example_module("async_conversions").FAST_TRANSPORT
    text = agent_path.read_text(encoding="utf-8")
    if text.count(transport) != 1:
        raise BenchmarkError(f"{agent_path}: the async conversion's transport argument `{transport.strip(', ')}` "
                             "is not there once: convert the app as examples/async_conversions.py records")
    agent_path.write_text(text.replace(transport, ""), encoding="utf-8")


def hand_sync_agent(generated: str) -> str:
    """The sync app's entry module with its handlers replaced by the plain `def` ones a hand migration has."""
    head, found, handlers = generated.partition(GENERATED_HANDLERS)
    invoke = re.search(r"run_sync\(([\w.]+), request\)", handlers)
    stream = re.search(r"iterate_sync\(([\w.]+), request\)", handlers)
    if not found or not invoke or not stream:
        raise BenchmarkError("the sync app's handlers are not the ones `migrate code --mode sync` writes: update "
                             "benchmarks/servers.py:hand_sync_agent")
    return head.rstrip() + "\n" + HAND_SYNC_HANDLERS.format(predict=invoke[1], predict_stream=stream[1])


def uv(argv: list[str], app: Path, env: dict) -> None:
    try:
        processes.run([*processes.uv_command(), *argv], cwd=app, env=env, timeout=600)
    except processes.CommandFailed as error:
        raise BenchmarkError(f"`uv {' '.join(argv)}` failed in {app.name}: {error}") from None


def app_python(app: Path) -> Path:
    """The interpreter of the app's own environment (`uv sync` made it from the app's lock)."""
    return app / ".venv" / "bin" / "python"


def build_apps(workdir: Path, env: dict, registered: dict | None = None) -> dict[str, Path]:
    """`migrate demo` builds the sync and async apps and verifies them (smoke with parity against the original,
    replay, check: its async app converted as the assistant would); the benchmark serves copies of them, with
    their peers. `registered` (where the example is already registered) spares the demo logging it again."""
    demo_dir = workdir / "demo"
    if registered is not None:
        (demo_dir / REGISTRY_DIR).mkdir(parents=True, exist_ok=True)
        (demo_dir / REGISTRY_DIR / f"{EXAMPLE}.json").write_text(json.dumps(registered), encoding="utf-8")
    migrate(["demo", "--example", EXAMPLE, "--workdir", str(demo_dir)], env)
    return with_peers(workdir, demo_apps(demo_dir, workdir), env)


def demo_apps(source: Path, workdir: Path) -> dict[str, Path]:
    """The sync and async apps `migrate demo` built in `source` (the async one converted), copied into
    `workdir` with the original they were migrated from: `--apps-from`."""
    from scripts.demo import app_name_for

    built = {mode: source / app_name_for(EXAMPLE, mode) for mode in ("sync", "async")}
    for app in built.values():
        if not (app / "uv.lock").is_file() or not (app / "agent_server" / "agent.py").is_file():
            raise BenchmarkError(f"{app} is not an app `migrate demo` built (no uv.lock or agent_server/agent.py)"
                                 f": run `uv run migrate demo --workdir {source}` first")
    if not (source / "original_mlflow_model" / "MLmodel").is_file():
        raise BenchmarkError(f"{source} has no original_mlflow_model/: pass the folder `migrate demo --workdir` wrote")
    if (workdir / "original_mlflow_model").exists():
        raise BenchmarkError(f"{workdir} already holds a benchmark's apps: pass a new --workdir, or none")
    shutil.copytree(source / "original_mlflow_model", workdir / "original_mlflow_model")
    apps = {}
    for mode, app in built.items():
        apps[mode] = workdir / f"bench-{mode}"
        shutil.copytree(app, apps[mode], ignore=shutil.ignore_patterns(".venv"))
    return apps


def with_peers(workdir: Path, apps: dict[str, Path], env: dict) -> dict[str, Path]:
    """The migrated sync and async apps plus the hand migrations and the ceiling derived from them, each
    app's environment synced from its lock."""
    # The hand migrations keep the migrated code and change only what the template does differently.
    apps["hand_async"] = workdir / "bench-hand-async"
    shutil.copytree(apps["async"], apps["hand_async"], ignore=shutil.ignore_patterns(".venv"))
    without_fast_transport(apps["hand_async"] / "agent_server" / "agent.py")
    apps["hand_sync"] = workdir / "bench-hand-sync"
    shutil.copytree(apps["sync"], apps["hand_sync"], ignore=shutil.ignore_patterns(".venv"))
    entry = apps["hand_sync"] / "agent_server" / "agent.py"
    entry.write_text(hand_sync_agent(entry.read_text(encoding="utf-8")), encoding="utf-8")
    for mode in ("hand_sync", "hand_async"):
        (apps[mode] / "agent_server" / "start_server.py").write_text(HAND_START_SERVER, encoding="utf-8")
    apps["sync_2w"] = apps["sync"]
    ceiling = workdir / "bench-ceiling" / "agent_server"
    ceiling.mkdir(parents=True)
    for name in ("__init__.py", "start_server.py"):
        shutil.copy(apps["sync"] / "agent_server" / name, ceiling / name)
    (ceiling / "agent.py").write_text(CEILING_AGENT, encoding="utf-8")
    apps["ceiling"] = ceiling.parent
    for mode in ("sync", "async"):
        uv(["sync", "--frozen", "--quiet"], apps[mode], env)
    return apps


def with_bin_on_path(env: dict, python: Path) -> dict:
    return {**env, "PATH": os.pathsep.join(filter(None, [str(python.parent), env.get("PATH")]))}


def trace_server(workdir: Path, env: dict) -> app_process.ServerCommand:
    """A real `mlflow server` on loopback: the apps export their traces to it over HTTP, as a deployed app
    exports to the workspace's tracking service."""
    def argv(port: int) -> list[str]:
        return [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{workdir / 'tracking.db'}",
                "--default-artifact-root", str(workdir / "trace-artifacts"), "--host", app_process.LOCALHOST,
                "--port", str(port), "--workers", "1",
                # uvicorn kills a worker that has not answered its ping within 5 s, which is
                # less than importing the tracking server takes on a busy small machine
                "--uvicorn-opts", "--timeout-worker-healthcheck 300"]
    # Its job runner (a separate consumer process) serves nothing the benchmark uses.
    env = app_process.local_run_environment({**env, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"})
    return app_process.ServerCommand(argv, workdir, env, health_path="/health", description="mlflow server (traces)")


def server_command(mode: str, workdir: Path, apps: dict[str, Path], env: dict, tracking_uri: str,
                   trace_sampling: float = 1.0) -> app_process.ServerCommand:
    # Tracing stays on, as in production, unless --trace-sampling lowers MLflow's sampling ratio.
    # MLFLOW_EXPERIMENT_ID is set as a deployed app's `experiment` resource sets it (0: the store's default);
    # without it MLflow searches for a Databricks notebook context (a failing import) on every trace.
    # Compiled modules kept where PYTHONDONTWRITEBYTECODE is set (as smoke's servers keep them): the servers
    # sharing one environment compile it once, not at every start.
    env = app_process.local_run_environment({**env, "MLFLOW_TRACKING_URI": tracking_uri, "PYTHONUNBUFFERED": "1",
                                             "MLFLOW_TRACE_SAMPLING_RATIO": str(trace_sampling),
                                             "MLFLOW_EXPERIMENT_ID": "0"})
    if mode == "original":
        # The sync app's environment holds the original's requirements.txt (setup adds it), resolved to the
        # newest versions it allows, as Model Serving installs it; the app's own additions serve nothing here.
        # `mlflow models serve` execs `uvicorn` by name: the environment's bin/ goes first on PATH, as `uv run`
        # puts it (run by a plain interpreter, PATH had no uvicorn and the original never started).
        env = with_bin_on_path(env, app_python(apps["sync"]))

        def original(port: int) -> list[str]:
            return [str(app_python(apps["sync"])), "-m", "mlflow", "models", "serve",
                    "-m", str(workdir / "original_mlflow_model"), "--env-manager", "local",
                    "-h", app_process.LOCALHOST, "-p", str(port)]
        return app_process.ServerCommand(original, workdir, env, health_path="/ping", description="mlflow models serve")
    workers = ["--workers", "2"] if mode == "sync_2w" else []
    # Each app runs on the environment of the app it was built from: the ceiling and hand_sync on the sync
    # app's, hand_async on the async app's (the same openai; aiohttp is installed there but hand_async does
    # not use it). The app's own agent_server/ comes first on sys.path (`-m` from its folder).
    python = app_python(apps[ENVIRONMENT_OF.get(mode, mode)])

    def app(port: int) -> list[str]:
        return [str(python), "-m", "agent_server.start_server", "--host", app_process.LOCALHOST,
                "--port", str(port), *workers]
    return app_process.ServerCommand(app, apps[mode], env, description=f"{mode} app")
