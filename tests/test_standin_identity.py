"""The stand-in tells principals apart and records which one made each downstream call; its SQL statements
and Genie answer deterministically. Driven through databricks-sdk, as the agents call it."""

from __future__ import annotations

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import Unauthenticated

from standin.identity import principal_of


def client(workspace, token: str) -> WorkspaceClient:
    return WorkspaceClient(host=workspace.url, token=token, auth_type="pat")


def test_derived_tokens_name_principals_and_nothing_else_passes():
    assert principal_of(b"Bearer T", "T") == "workspace"
    assert principal_of(b"Bearer T.alice", "T") == "alice"
    assert principal_of("Bearer T.user-3-ab12", "T") == "user-3-ab12"
    for refused in (b"Bearer X.alice", b"Bearer T.", b"Bearer T.a/b", b"T", b""):
        assert principal_of(refused, "T") is None


def test_each_call_is_recorded_with_the_principal_that_made_it(standin_workspace):
    start = standin_workspace.calls()["next"]
    alice = client(standin_workspace, standin_workspace.principal_token("alice"))
    app = client(standin_workspace, standin_workspace.token)
    alice.statement_execution.execute_statement(statement="SELECT 1", warehouse_id="wh-1", wait_timeout="30s")
    alice.genie.start_conversation_and_wait("space-1", "how many orders?")
    app.statement_execution.execute_statement(statement="SELECT 1", warehouse_id="wh-1")
    assert alice.current_user.me().user_name == "alice@example.com"
    calls = [(call["kind"], call["resource"], call["principal"])
             for call in standin_workspace.calls(start)["calls"]]
    assert calls == [("sql", "wh-1", "alice"), ("genie", "space-1", "alice"), ("genie", "space-1", "alice"),
                     ("sql", "wh-1", "workspace"), ("current_user", None, "alice")]
    with pytest.raises(Unauthenticated):
        client(standin_workspace, "someone-else").current_user.me()


def test_sql_and_genie_answer_the_same_request_the_same_way(standin_workspace):
    alice = client(standin_workspace, standin_workspace.principal_token("alice"))
    bob = client(standin_workspace, standin_workspace.principal_token("bob"))
    first = alice.statement_execution.execute_statement(statement="SELECT 2", warehouse_id="wh-1")
    again = bob.statement_execution.execute_statement(statement="SELECT 2", warehouse_id="wh-1")
    other = alice.statement_execution.execute_statement(statement="SELECT 3", warehouse_id="wh-1")
    assert first.status.state.value == "SUCCEEDED" and first.result.data_array == again.result.data_array
    assert first.result.data_array != other.result.data_array
    answer = alice.genie.start_conversation_and_wait("space-1", "top customers")
    assert answer.status.value == "COMPLETED"
    assert answer.as_dict() == bob.genie.start_conversation_and_wait("space-1", "top customers").as_dict()
