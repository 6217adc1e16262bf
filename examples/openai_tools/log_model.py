"""How this agent was logged for Model Serving: code_paths, an artifact, every resource type it touches."""

import json
from pathlib import Path

from mlflow.models.resources import (
    DatabricksApp,
    DatabricksFunction,
    DatabricksGenieSpace,
    DatabricksLakebase,
    DatabricksServingEndpoint,
    DatabricksSQLWarehouse,
    DatabricksTable,
    DatabricksUCConnection,
    DatabricksUCModelService,
    DatabricksVectorSearchIndex,
)

HERE = Path(__file__).resolve().parent
REGISTERED_NAME = "main.agents.openai_tools"


def log_arguments() -> dict:
    return {
        "python_model": str(HERE / "agent.py"),
        "code_paths": [str(HERE / "code" / "tools.py")],
        "artifacts": {"system_prompt": str(HERE / "artifacts" / "system_prompt.txt")},
        "input_example": json.loads((HERE / "input_example.json").read_text()),
        "pip_requirements": ["mlflow>=3.17", "databricks-sdk>=0.160", "openai>=1.60"],
        # One of each of MLflow's ten Databricks resource types, as a real agent with retrieval, UC tools,
        # Genie and Lakebase memory would declare them; the Genie space is used on behalf of the user.
        "resources": [
            DatabricksServingEndpoint(endpoint_name="databricks-claude-sonnet-4"),
            DatabricksVectorSearchIndex(index_name="main.docs.docs_index"),
            DatabricksFunction(function_name="main.tools.lookup_customer"),
            DatabricksTable(table_name="main.sales.orders"),
            DatabricksUCConnection(connection_name="github_connection"),
            DatabricksSQLWarehouse(warehouse_id="abc123def456"),
            DatabricksGenieSpace(genie_space_id="01ef0123456789abcdef0123456789ab", on_behalf_of_user=True),
            DatabricksApp(app_name="ticket-router"),
            DatabricksLakebase(database_instance_name="agent-memory"),
            DatabricksUCModelService(model_service_name="main.models.reranker"),
        ],
    }
