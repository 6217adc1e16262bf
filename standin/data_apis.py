"""The stand-in's data APIs: SQL statement execution, Genie conversations, vector search queries.

The small subset an on-behalf-of-user agent's tools call, answered deterministically (same request, same
answer: ids and rows are digests of the request) and recorded with the principal that made each call
(standin/identity.py). Statements and Genie messages finish at once, so `wait_timeout` and
`start_conversation_and_wait` return on their first round trip.
"""

from __future__ import annotations

import hashlib
import json

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from standin import inference_tables

CREATED_MS = 1_700_000_000_000


def digest(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def principal(request: Request) -> str:
    return request.scope.get("state", {}).get("principal", "workspace")


def statement_result(body: dict) -> dict:
    """A finished statement: two columns, two rows, both derived from the statement text."""
    key = digest(body.get("statement"), body.get("warehouse_id"), body.get("parameters"))
    rows = [[f"row-{key[:6]}", str(int(key[6:10], 16))], [f"row-{key[10:16]}", str(int(key[16:20], 16))]]
    columns = [{"name": "name", "type_name": "STRING", "type_text": "STRING", "position": 0},
               {"name": "value", "type_name": "LONG", "type_text": "BIGINT", "position": 1}]
    return {
        "statement_id": f"01ef{key[:28]}",
        "status": {"state": "SUCCEEDED"},
        "manifest": {"format": "JSON_ARRAY", "schema": {"column_count": 2, "columns": columns},
                     "total_row_count": len(rows), "total_chunk_count": 1, "truncated": False,
                     "chunks": [{"chunk_index": 0, "row_offset": 0, "row_count": len(rows)}]},
        "result": {"chunk_index": 0, "row_offset": 0, "row_count": len(rows), "data_array": rows},
    }


def genie_message(space_id: str, content: str) -> dict:
    key = digest(space_id, content)
    return {
        "id": key[:32], "message_id": key[:32], "conversation_id": key[32:64], "space_id": space_id,
        "content": content, "status": "COMPLETED", "created_timestamp": CREATED_MS,
        "last_updated_timestamp": CREATED_MS,
        "attachments": [
            {"attachment_id": "a-" + key[:12], "text": {"id": "t-" + key[:12],
                                                        "content": f"Genie answer {key[:8]} to: {content}"}},
            {"attachment_id": "q-" + key[:12], "query": {"id": "q-" + key[:12], "description": "the query",
                                                         "query": f"SELECT '{key[:8]}' AS answer"}},
        ],
    }


def add_data_routes(app: FastAPI, state) -> None:
    """Register the routes on `app`; `state.calls` (a CallRecord) gets one entry per call."""
    messages: dict[str, dict] = {}  # by message id, for the poll that *_and_wait makes
    tables: dict[str, list[dict]] = {}  # payload tables by full name (standin/inference_tables.py)
    stopped: set[str] = set()  # warehouse ids that answer as deleted ones do

    @app.post("/api/2.0/sql/statements")
    @app.post("/api/2.0/sql/statements/")
    async def execute_statement(request: Request):
        body = await request.json()
        if not body.get("statement") or not body.get("warehouse_id"):
            return JSONResponse({"error_code": "INVALID_PARAMETER_VALUE",
                                 "message": "statement and warehouse_id are required"}, status_code=400)
        state.calls.add("sql", body["warehouse_id"], principal(request))
        if body["warehouse_id"] in stopped:
            return inference_tables.stopped_warehouse(body["warehouse_id"])
        if inference_tables.is_payload_select(body["statement"]):  # migrate replay (standin/inference_tables.py)
            key = digest(body.get("statement"), body.get("parameters"))
            return inference_tables.select_rows(tables, body, f"01ef{key[:28]}")
        return statement_result(body)

    @app.put("/_standin/tables/{name}")
    async def put_table(name: str, request: Request):
        tables[name] = (await request.json())["rows"]
        return {}

    @app.put("/_standin/warehouses/{warehouse_id}")
    async def put_warehouse(warehouse_id: str, request: Request):
        if (await request.json()).get("state") == "DELETED":
            stopped.add(warehouse_id)
        else:
            stopped.discard(warehouse_id)
        return {}

    @app.post("/api/2.0/genie/spaces/{space_id}/start-conversation")
    async def start_conversation(space_id: str, request: Request):
        body = await request.json()
        state.calls.add("genie", space_id, principal(request))
        message = genie_message(space_id, body.get("content", ""))
        messages[message["id"]] = message
        return {"conversation_id": message["conversation_id"], "message_id": message["id"],
                "conversation": {"id": message["conversation_id"], "space_id": space_id, "title": message["content"]},
                "message": message}

    @app.get("/api/2.0/genie/spaces/{space_id}/conversations/{conversation_id}/messages/{message_id}")
    async def get_message(space_id: str, conversation_id: str, message_id: str, request: Request):
        if message_id not in messages:
            return JSONResponse({"error_code": "RESOURCE_DOES_NOT_EXIST",
                                 "message": f"Message {message_id} does not exist."}, status_code=404)
        state.calls.add("genie", space_id, principal(request))
        return messages[message_id]

    @app.post("/api/2.0/vector-search/indexes/{index_name}/query")
    async def query_index(index_name: str, request: Request):
        body = await request.json()
        state.calls.add("vector_search", index_name, principal(request))
        key = digest(index_name, body.get("query_text"), body.get("query_vector"), body.get("columns"))
        columns = body.get("columns") or ["id", "text"]
        rows = [[f"{column}-{key[i * 4:i * 4 + 4]}" for column in columns] + [0.9 - i / 10] for i in range(2)]
        return {"manifest": {"column_count": len(columns) + 1,
                             "columns": [{"name": column} for column in columns] + [{"name": "score"}]},
                "result": {"row_count": len(rows), "data_array": rows}}
