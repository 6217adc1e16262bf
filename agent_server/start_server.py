"""`start-server`: serve the agent in `agent_server/agent.py` with MLflow's AgentServer.

Databricks Apps runs this as the app's command; locally `uv run start-server --port 8000`.
"""

from __future__ import annotations

import gc

# Start-up builds hundreds of thousands of long-lived objects (MLflow, the SDK, the agent's libraries) and
# next to no garbage, and the cyclic collector walks them again and again as they pile up: about a third
# of the start's CPU on a 2-vCPU app. It stays off until the agent is loaded; what start-up built is then
# collected once and frozen out of later collections' way (gc.freeze), for the server's life.
gc.disable()

import argparse  # noqa: E402

from dotenv import load_dotenv  # noqa: E402

# The app's .env (profile, tracking URI, experiment) must be in the environment before the agent
# module builds its clients at import time.
load_dotenv()

import logging  # noqa: E402
import os  # noqa: E402

import mlflow  # noqa: E402
from mlflow.genai.agent_server import AgentServer  # noqa: E402


def use_experiment_once() -> None:
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


use_experiment_once()  # before the agent's import, so an experiment the agent sets itself wins

import agent_server.agent  # noqa: E402,F401  (importing registers the @invoke and @stream handlers)

agent_server_instance = AgentServer("ResponsesAgent")
app = agent_server_instance.app

gc.collect()
gc.freeze()
gc.enable()


WORKER_START_SECONDS = int(os.environ.get("AGENT_WORKER_START_SECONDS", "300"))


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(prog="start-server", description="Serve the migrated agent.")
    parser.add_argument("--host", default="0.0.0.0", help="interface to bind (default: all)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default: 8000)")
    parser.add_argument("--workers", type=int, default=1, help="server processes (default: 1)")
    parser.add_argument("--reload", action="store_true", help="restart when the code changes (development)")
    args = parser.parse_args(argv)
    # With --workers, uvicorn kills a worker that does not answer its health ping within
    # timeout_worker_healthcheck (default 5 s), and a worker cannot answer before it has imported MLflow and
    # the agent, which takes longer than that on a small machine: every worker would be killed and restarted
    # forever. Give the import the time a start may take.
    uvicorn.run("agent_server.start_server:app", host=args.host, port=args.port,
                workers=args.workers, reload=args.reload, timeout_worker_healthcheck=WORKER_START_SECONDS)


if __name__ == "__main__":
    main()
