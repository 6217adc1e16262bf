"""How this agent was logged: a model config file, the FAQ as an artifact, the LLM endpoint it queries."""

import json
from pathlib import Path

from mlflow.models.resources import DatabricksServingEndpoint

HERE = Path(__file__).resolve().parent
REGISTERED_NAME = "main.agents.faq_agent"


def log_arguments() -> dict:
    return {
        "python_model": str(HERE / "agent.py"),
        # MLflow stores the file's contents in MLmodel; ModelConfig in the agent reads them when it is loaded.
        "model_config": str(HERE / "config.yml"),
        "artifacts": {"faq": str(HERE / "artifacts" / "faq.json")},
        "input_example": json.loads((HERE / "input_example.json").read_text()),
        "pip_requirements": ["mlflow>=3.17", "databricks-sdk>=0.160", "httpx>=0.27", "pyyaml>=6.0"],
        "resources": [DatabricksServingEndpoint(endpoint_name="databricks-meta-llama-3-3-70b-instruct")],
    }
