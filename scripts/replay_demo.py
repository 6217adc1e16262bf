"""The demo's real traffic: an inference table on the stand-in's endpoint, filled with the requests a Model
Serving endpoint would have logged for the example, so `migrate replay` has something true to replay.

The rows are made from the example's own input example: it as sent, the same again (replay de-duplicates),
a variant streamed by its client, the variant again as an older client sent it (`dataframe_records`, or
ChatAgent `messages` for an example whose input example uses them), and one request the endpoint failed
(HTTP 500), which replay leaves out. Only the stand-in ever sees these; nothing here is for production.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

CATALOG, SCHEMA = "main", "agents"
WAREHOUSE_ID = "demo-warehouse"
SERVED_ENTITY_ID = "00000000000000000000000000000001"


def table_prefix(endpoint: str) -> str:
    return endpoint.replace("-", "_")


def payload_table(endpoint: str) -> str:
    return f"{CATALOG}.{SCHEMA}.{table_prefix(endpoint)}_payload"


def variant(request: dict, suffix: str) -> dict:
    """`request` with `suffix` added to its last plain-text user message: a different question, the same shape."""
    changed = copy.deepcopy(request)
    for message in reversed(changed.get("input") or changed.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user" and isinstance(message.get("content"), str):
            message["content"] += suffix
            break
    return changed


def older_format(request: dict) -> dict:
    """How an older client sent `request`: one dataframe record (MLflow's pyfunc hands the agent that row)."""
    return {"dataframe_records": [request]}


def logged_rows(input_example: dict) -> list[dict]:
    """Payload-table rows, newest last, as AI Gateway logs them (the request a JSON string; no response is
    logged here, so the demo compares with the original model only)."""
    other = variant(input_example, " (asked again, from the inference table)")
    bodies = [(input_example, 200), (input_example, 200), ({**other, "stream": True}, 200),
              (older_format(variant(input_example, " (from an older client)")), 200),
              (variant(input_example, " (this one failed)"), 500)]
    rows = []
    for index, (body, status) in enumerate(bodies):
        rows.append({"databricks_request_id": f"demo-request-{index + 1}",
                     "request_time": f"2026-11-30T10:0{index}:00.000Z", "status_code": status,
                     "request": json.dumps(body), "response": None,
                     "served_entity_id": SERVED_ENTITY_ID, "execution_duration_ms": 120 + index})
    return rows


def serve_logged_traffic(workspace, endpoint: str, registered: dict, example_dir: Path) -> str:
    """Put `endpoint` on the stand-in with an AI Gateway inference table, and fill its payload table; the
    warehouse id to read it with."""
    import standin
    from standin.inference_tables import inference_table_config

    workspace.add_endpoint(standin.endpoint_json(endpoint, registered["name"], registered["version"],
                                                 ai_gateway=inference_table_config(CATALOG, SCHEMA,
                                                                                   table_prefix(endpoint))))
    input_example = json.loads((example_dir / "input_example.json").read_text(encoding="utf-8"))
    workspace.add_payload_table(payload_table(endpoint), logged_rows(input_example))
    return WAREHOUSE_ID
