"""Log one example agent the Model Serving way and register it in a local MLflow registry.

    python examples/register.py openai_tools REGISTRY_DIR

Runs in its own process (MLflow's tracking settings are process-global) with DATABRICKS_HOST pointing at
the workspace stand-in: logging loads the agent and runs its input example, as it does on Databricks.
Prints one JSON line: model_uri, name, version, registry_uri, tracking_uri.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import mlflow

EXAMPLES_DIR = Path(__file__).resolve().parent
EXPERIMENT = "agent-migrate-examples"


def load_spec(example: str):
    path = EXAMPLES_DIR / example / "log_model.py"
    spec = importlib.util.spec_from_file_location(f"example_{example}_log_model", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def register(example: str, registry_dir: Path) -> dict:
    registry_dir = registry_dir.resolve()
    registry_dir.mkdir(parents=True, exist_ok=True)
    # A SQLite store is a real MLflow tracking server and model registry, without a process to run.
    store_uri = f"sqlite:///{registry_dir / 'mlflow.db'}"
    mlflow.set_tracking_uri(store_uri)
    mlflow.set_registry_uri(store_uri)
    if mlflow.get_experiment_by_name(EXPERIMENT) is None:
        # Without an explicit location, artifacts would land in ./mlruns of whatever folder we run from.
        mlflow.create_experiment(EXPERIMENT, artifact_location=(registry_dir / "artifacts").as_uri())
    mlflow.set_experiment(EXPERIMENT)

    spec = load_spec(example)
    # MLflow imports the agent file while logging, so its code_paths modules must be importable here, as
    # they were in the notebook that logged it.
    sys.path.insert(0, str(EXAMPLES_DIR / example / "code"))
    with mlflow.start_run(run_name=example):
        info = mlflow.pyfunc.log_model(name="agent", registered_model_name=spec.REGISTERED_NAME,
                                       **spec.log_arguments())
    version = str(info.registered_model_version)
    return {"model_uri": f"models:/{spec.REGISTERED_NAME}/{version}", "name": spec.REGISTERED_NAME,
            "version": version, "registry_uri": store_uri, "tracking_uri": store_uri}


if __name__ == "__main__":
    print(json.dumps(register(sys.argv[1], Path(sys.argv[2]))))
