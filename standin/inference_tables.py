"""The stand-in's inference tables: payload tables a test or the demo fills, read back through the SQL statement
API the way `migrate replay` reads a real one.

A real AI Gateway inference table is a Unity Catalog Delta table `{catalog}.{schema}.{prefix}_payload`; the
stand-in keeps each as a list of rows (dicts of the columns the harness reads) and answers the one statement
shape the harness sends: a SELECT of named columns `FROM IDENTIFIER(:payload_table)` with optional
`status_code = :status_code`, `request_time >= :since` and `served_entity_id = :served_entity_id` conditions,
newest first, `row_limit` rows. Anything else about a payload table is refused as a real warehouse would
refuse an unknown table (`TABLE_OR_VIEW_NOT_FOUND`). Warehouses named in `stopped` answer as a deleted one does.
"""

from __future__ import annotations

import re

from fastapi.responses import JSONResponse

TABLE_PARAMETER = "IDENTIFIER(:payload_table)"
COLUMN_TYPES = {"databricks_request_id": "STRING", "request_time": "TIMESTAMP", "status_code": "INT",
                "request": "STRING", "response": "STRING", "served_entity_id": "STRING",
                "execution_duration_ms": "BIGINT", "requester": "STRING"}


def is_payload_select(statement: str) -> bool:
    return TABLE_PARAMETER in statement


def parameters_of(body: dict) -> dict[str, str]:
    return {item["name"]: item.get("value") for item in body.get("parameters") or []}


def selected_columns(statement: str) -> list[str]:
    match = re.search(r"SELECT\s+(.*?)\s+FROM", statement, flags=re.S | re.I)
    return [column.strip() for column in match.group(1).split(",")] if match else []


def failed(statement_id: str, message: str) -> dict:
    return {"statement_id": statement_id, "status": {"state": "FAILED",
                                                      "error": {"error_code": "BAD_REQUEST", "message": message}}}


def select_rows(tables: dict[str, list[dict]], body: dict, statement_id: str) -> dict:
    """The statement's result over the stand-in's payload tables, in the statement API's INLINE JSON_ARRAY form."""
    statement = body["statement"]
    values = parameters_of(body)
    name = values.get("payload_table") or ""
    if name not in tables:
        return failed(statement_id, f"[TABLE_OR_VIEW_NOT_FOUND] The table or view `{name}` cannot be found. "
                                    "Verify the spelling and correctness of the schema and catalog.")
    columns = selected_columns(statement)
    unknown = [column for column in columns if column not in COLUMN_TYPES]
    if unknown:
        return failed(statement_id, f"[UNRESOLVED_COLUMN.WITH_SUGGESTION] A column `{unknown[0]}` cannot be resolved.")
    rows = list(tables[name])
    if "status_code = :status_code" in statement:
        rows = [row for row in rows if str(row.get("status_code")) == values.get("status_code")]
    if "request_time >= :since" in statement:
        rows = [row for row in rows if str(row.get("request_time")) >= (values.get("since") or "")]
    if "served_entity_id = :served_entity_id" in statement:
        rows = [row for row in rows if row.get("served_entity_id") == values.get("served_entity_id")]
    rows.sort(key=lambda row: str(row.get("request_time")), reverse=True)
    if body.get("row_limit"):
        rows = rows[:int(body["row_limit"])]
    data = [[None if row.get(column) is None else str(row[column]) for column in columns] for row in rows]
    schema = [{"name": column, "type_name": COLUMN_TYPES[column], "type_text": COLUMN_TYPES[column],
               "position": index} for index, column in enumerate(columns)]
    return {
        "statement_id": statement_id,
        "status": {"state": "SUCCEEDED"},
        "manifest": {"format": "JSON_ARRAY", "schema": {"column_count": len(columns), "columns": schema},
                     "total_row_count": len(data), "total_chunk_count": 1, "truncated": False,
                     "chunks": [{"chunk_index": 0, "row_offset": 0, "row_count": len(data)}]},
        "result": {"chunk_index": 0, "row_offset": 0, "row_count": len(data), "data_array": data},
    }


def stopped_warehouse(warehouse_id: str) -> JSONResponse:
    return JSONResponse({"error_code": "RESOURCE_DOES_NOT_EXIST",
                         "message": f"Warehouse {warehouse_id} does not exist or was deleted."}, status_code=404)


def inference_table_config(catalog: str, schema: str, prefix: str, enabled: bool = True) -> dict:
    """An endpoint's `ai_gateway` section logging to `{catalog}.{schema}.{prefix}_payload`."""
    return {"inference_table_config": {"catalog_name": catalog, "schema_name": schema, "table_name_prefix": prefix,
                                       "enabled": enabled}}
