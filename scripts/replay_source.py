"""Where `migrate replay` gets real traffic: the endpoint's AI Gateway inference table, read through a SQL warehouse.

Facts this module stands on (see skills/replay-traffic/SKILL.md for where they were read):
- databricks-sdk's `ServingEndpointDetailed.ai_gateway.inference_table_config` (`AiGatewayInferenceTableConfig`:
  catalog_name, schema_name, table_name_prefix, enabled) says where an endpoint logs; the requests land in
  the Delta table `{catalog}.{schema}.{prefix}_payload`, delivered best effort within about an hour.
- The payload table's columns used here: databricks_request_id, request_time, status_code, request, response
  (JSON strings), served_entity_id, execution_duration_ms.
- The statement execution API (`statement_execution.execute_statement`) takes named parameters; the table
  name goes through `IDENTIFIER(:payload_table)`, so no user value is ever formatted into SQL text.
  `wait_timeout` (5-50 s) bounds the wait; `on_wait_timeout=CANCEL` stops a statement that takes longer.

Every way this can fail is a `MigrateError` with its code and fix: there is no replay set to report on.
"""

from __future__ import annotations

from dataclasses import dataclass

from scripts.core.errors import MigrateError
from scripts.workspace import login_fix, reaching, where

COLUMNS = ("databricks_request_id", "request_time", "status_code", "request", "response", "served_entity_id",
           "execution_duration_ms")
WAIT_TIMEOUT = "30s"
# Rows fetched per requested request: duplicates and unusable rows are dropped after the fetch.
FETCH_FACTOR = 4
MAX_CHUNKS = 20
INFERENCE_TABLE_FIX = ("enable AI Gateway inference tables on the endpoint (Serving UI > the endpoint > AI Gateway > "
                       "Inference tables, or `databricks serving-endpoints put-ai-gateway`), let it serve traffic "
                       "for an hour, then run `migrate replay` again; replay is optional, `migrate check` passes "
                       "without it")


@dataclass(frozen=True)
class PayloadTable:
    endpoint: str
    full_name: str  # catalog.schema.prefix_payload


def payload_table(client, endpoint: str, profile: str | None) -> PayloadTable:
    """The endpoint's payload table, from its AI Gateway inference table config."""
    from databricks.sdk.errors import NotFound, PermissionDenied

    with reaching(client, profile, f"read serving endpoint {endpoint!r}", code="RPL002"):
        try:
            details = client.serving_endpoints.get(endpoint)
        except (NotFound, PermissionDenied) as error:
            raise MigrateError(f"cannot read serving endpoint {endpoint!r} in {where(profile, client.config.host)}: "
                               f"{error}", "check the name with `databricks serving-endpoints list`, or pass "
                               "--endpoint; you need CAN_VIEW on it", code="RPL002") from None
    config = details.ai_gateway.inference_table_config if details.ai_gateway else None
    if config is None or not config.enabled:
        state = "is disabled" if config is not None else "is not configured"
        raise MigrateError(f"endpoint {endpoint!r} logs no traffic: its AI Gateway inference table {state}",
                           INFERENCE_TABLE_FIX, code="RPL001")
    if not (config.catalog_name and config.schema_name):
        raise MigrateError(f"endpoint {endpoint!r} has an inference table config without a catalog and schema",
                           INFERENCE_TABLE_FIX, code="RPL001")
    # Without a prefix the table is named after the endpoint (the docs' default), `-` not being allowed in names.
    prefix = config.table_name_prefix or endpoint.replace("-", "_")
    return PayloadTable(endpoint, f"{config.catalog_name}.{config.schema_name}.{prefix}_payload")


def select_statement(since: str | None, served_entity_id: str | None) -> tuple[str, list[dict]]:
    """The SELECT over the payload table and its named parameters: successful requests, newest first."""
    conditions = ["status_code = :status_code"]
    parameters = [{"name": "status_code", "value": "200", "type": "INT"}]
    if since:
        conditions.append("request_time >= :since")
        parameters.append({"name": "since", "value": since, "type": "TIMESTAMP"})
    if served_entity_id:
        conditions.append("served_entity_id = :served_entity_id")
        parameters.append({"name": "served_entity_id", "value": served_entity_id, "type": "STRING"})
    statement = (f"SELECT {', '.join(COLUMNS)} FROM IDENTIFIER(:payload_table) WHERE {' AND '.join(conditions)} "
                 "ORDER BY request_time DESC")
    return statement, parameters


def read_rows(client, table: PayloadTable, warehouse_id: str, limit: int, since: str | None,
              served_entity_id: str | None, profile: str | None) -> list[dict]:
    """The logged rows (dicts by column), at most `limit * FETCH_FACTOR`, through the statement API."""
    from databricks.sdk.errors import DatabricksError
    from databricks.sdk.service.sql import ExecuteStatementRequestOnWaitTimeout, StatementParameterListItem

    statement, parameters = select_statement(since, served_entity_id)
    parameters.append({"name": "payload_table", "value": table.full_name, "type": "STRING"})
    warehouse_fix = (f"check the warehouse id with `databricks warehouses list`, start it, and make sure you have "
                     f"CAN_USE on it; {login_fix(profile)}")
    with reaching(client, profile, f"run a statement on SQL warehouse {warehouse_id!r}", code="RPL003"):
        try:
            response = client.statement_execution.execute_statement(
                statement=statement, warehouse_id=warehouse_id, wait_timeout=WAIT_TIMEOUT,
                on_wait_timeout=ExecuteStatementRequestOnWaitTimeout.CANCEL, row_limit=limit * FETCH_FACTOR,
                parameters=[StatementParameterListItem(**item) for item in parameters])
        except DatabricksError as error:  # the API refused the warehouse (deleted, no access, bad id)
            raise MigrateError(f"SQL warehouse {warehouse_id!r} refused the statement: {error}", warehouse_fix,
                               code="RPL003") from None
        state = response.status.state.value if response.status and response.status.state else None
        if state != "SUCCEEDED":
            raise statement_problem(response, state, table, warehouse_id, warehouse_fix)
        rows = list(response.result.data_array or []) if response.result else []
        chunk = response.result.next_chunk_index if response.result else None
        while chunk is not None and chunk < MAX_CHUNKS:
            more = client.statement_execution.get_statement_result_chunk_n(response.statement_id, chunk)
            rows += list(more.data_array or [])
            chunk = more.next_chunk_index
    names = [column.name for column in response.manifest.schema.columns]
    return [dict(zip(names, row)) for row in rows]


def statement_problem(response, state: str | None, table: PayloadTable, warehouse_id: str,
                      warehouse_fix: str) -> MigrateError:
    message = response.status.error.message if response.status and response.status.error else ""
    if "TABLE_OR_VIEW_NOT_FOUND" in (message or ""):
        return MigrateError(f"the payload table {table.full_name} of endpoint {table.endpoint!r} does not exist "
                            "(or you may not see it)",
                            "the table appears with the first logged request (up to an hour after traffic); ask for "
                            "USE CATALOG, USE SCHEMA and SELECT on it; check the endpoint's inference table config",
                            code="RPL004")
    if state in ("PENDING", "RUNNING", "CANCELED", "CLOSED"):
        return MigrateError(f"the statement on SQL warehouse {warehouse_id!r} did not finish within {WAIT_TIMEOUT} "
                            f"(state {state})", f"start the warehouse and run `migrate replay` again; {warehouse_fix}",
                            code="RPL003")
    return MigrateError(f"reading {table.full_name} on SQL warehouse {warehouse_id!r} failed ({state}): {message}",
                        "check the table's columns against the AI Gateway inference table schema, and that you may "
                        "SELECT from it", code="RPL005")
