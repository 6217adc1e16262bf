"""`start-server`: serve the agent in `agent_server/agent.py` with MLflow's AgentServer.

Databricks Apps runs this as the app's command; locally `uv run start-server --port 8000`.

Each process that serves requests loads MLflow and the agent once, before uvicorn starts its event loop (an
agent may call `asyncio.run` at import, which fails inside a running loop): the one server process in `main`,
each worker of `--workers N` as multiprocessing starts it. The supervisor of `--workers N` serves nothing
and loads nothing: loading there too cost every start ~6 s of CPU and ~250 MB, and the workers waited for it.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import logging
import os
import sys

from dotenv import load_dotenv

# The app's .env (profile, tracking URI, experiment) must be in the environment before the agent
# module builds its clients at import time.
load_dotenv()

WORKER_START_SECONDS = int(os.environ.get("AGENT_WORKER_START_SECONDS", "300"))


def use_experiment_once(mlflow) -> None:
    """Make MLFLOW_EXPERIMENT_ID (the app's `experiment` resource) MLflow's active experiment, once.

    With the variable alone, MLflow looks the experiment up again for every trace it starts (a tracking
    server round trip, on the server's event loop, once per request); an active experiment is looked up
    once. If the lookup fails the app still serves, and MLflow keeps trying per trace as before.
    """
    experiment_id = os.environ.get("MLFLOW_EXPERIMENT_ID", "").strip()
    if not experiment_id:
        return
    try:
        mlflow.set_experiment(experiment_id=experiment_id)
    except Exception as error:  # noqa: BLE001 (tracing trouble must not stop the app from serving)
        logging.getLogger(__name__).warning("could not set MLflow experiment %s at start: %s", experiment_id, error)


def load_app():
    """MLflow, the agent (importing it registers its @invoke and @stream handlers) and AgentServer's app."""
    # Loading builds hundreds of thousands of long-lived objects (MLflow, the SDK, the agent's libraries) and
    # next to no garbage, and the cyclic collector walks them again and again as they pile up: about a third
    # of the start's CPU on a 2-vCPU app. It stays off while they load; what loading built is then collected
    # once and frozen out of later collections' way (gc.freeze), for the server's life.
    gc.disable()
    try:
        import mlflow
        from mlflow.genai.agent_server import AgentServer

        use_experiment_once(mlflow)  # before the agent's import, so an experiment the agent sets itself wins
        import agent_server.agent  # noqa: F401
        return AgentServer("ResponsesAgent").app
    finally:
        gc.collect()
        gc.freeze()
        gc.enable()


def loaded_app():
    """This module's app, loaded on the first call in this process."""
    if "app" not in globals():
        globals()["app"] = load_app()
    return globals()["app"]


def __getattr__(name: str):
    """`app` for an importer other than `start-server` (uvicorn's own command line, a test): loaded on first
    use, in the process that asks (PEP 562)."""
    if name == "app":
        return loaded_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load_where_uvicorn_looks() -> None:
    """Load into the module uvicorn imports the app from. Under `python -m agent_server.start_server` this
    file also runs as `__main__` (`__mp_main__` in a worker), a second module: loading there would load twice."""
    importlib.import_module("agent_server.start_server").loaded_app()


def is_a_spawned_worker() -> bool:
    """Whether multiprocessing started this interpreter (uvicorn's `--workers N` and `--reload` do). Its own
    command line says so; sys.argv does not (multiprocessing gives the worker its parent's)."""
    return "--multiprocessing-fork" in sys.orig_argv


if is_a_spawned_worker():
    # multiprocessing runs the parent's main module (`start-server`, which imports this one) in the worker
    # before uvicorn starts the worker's event loop: the one moment to load outside it.
    load_where_uvicorn_looks()


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(prog="start-server", description="Serve the migrated agent.")
    parser.add_argument("--host", default="0.0.0.0", help="interface to bind (default: all)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default: 8000)")
    parser.add_argument("--workers", type=int, default=1, help="server processes (default: 1)")
    parser.add_argument("--reload", action="store_true", help="restart when the code changes (development)")
    args = parser.parse_args(argv)
    if args.workers <= 1 and not args.reload:
        load_where_uvicorn_looks()  # this process serves: before uvicorn starts the event loop
    # With --workers, uvicorn kills a worker that does not answer its health ping within
    # timeout_worker_healthcheck (default 5 s), and a worker cannot answer before it has imported MLflow and
    # the agent, which takes longer than that on a small machine: every worker would be killed and restarted
    # forever. Give the import the time a start may take.
    uvicorn.run("agent_server.start_server:app", host=args.host, port=args.port,
                workers=args.workers, reload=args.reload, timeout_worker_healthcheck=WORKER_START_SECONDS)


if __name__ == "__main__":
    main()
