"""How this agent was logged: a code_paths subpackage and an auth policy (system resources + user scopes)."""

import json
from pathlib import Path

from mlflow.models.auth_policy import AuthPolicy, SystemAuthPolicy, UserAuthPolicy
from mlflow.models.resources import DatabricksServingEndpoint, DatabricksTable

HERE = Path(__file__).resolve().parent
REGISTERED_NAME = "main.agents.langgraph_agent"


def log_arguments() -> dict:
    return {
        "python_model": str(HERE / "agent.py"),
        "code_paths": [str(HERE / "code" / "helpers")],
        "input_example": json.loads((HERE / "input_example.json").read_text()),
        "pip_requirements": ["mlflow>=3.17", "databricks-langchain>=0.8", "langgraph>=0.6"],
        "auth_policy": AuthPolicy(
            system_auth_policy=SystemAuthPolicy(resources=[
                DatabricksServingEndpoint(endpoint_name="databricks-meta-llama-3-3-70b-instruct"),
                DatabricksTable(table_name="main.warehouse.stock"),
            ]),
            user_auth_policy=UserAuthPolicy(api_scopes=["serving.serving-endpoints", "sql"]),
        ),
    }
