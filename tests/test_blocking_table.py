"""Every entry of the blocking-call table classifies its own example, in an async handler, as its kind."""

from __future__ import annotations

import ast
import textwrap

import pytest

from scripts.model.blocking import ASYNC_EQUIVALENT, blocking_calls
from scripts.model.parsed_modules import parsed_module
from scripts.model.blocking_table import PATTERNS


def blocking_in_handler(example: str) -> list:
    *imports, call = example.splitlines()
    source = "\n".join(imports) + "\n\n\nasync def handler(request, w, index, loop):\n" + textwrap.indent(call, "    ")
    module = parsed_module(ast.parse(source), "agent_server.agent", "agent_server/agent.py")
    return blocking_calls({module.name: module}, [(module.name, "handler")])


@pytest.mark.parametrize("entry", PATTERNS, ids=lambda entry: entry.pattern)
def test_each_pattern_classifies_its_example(entry):
    found = blocking_in_handler(entry.example)
    assert [site.kind for site in found][:1] == [entry.kind], found
    assert entry.kind in ASYNC_EQUIVALENT and found[0].fix.startswith("replace `")


@pytest.mark.parametrize("call", ["await asyncio.sleep(1)", "self.files.append(1)", "items.get('x')",
                                  "await asyncio.to_thread(w.jobs.run_now, 1)"])
def test_calls_that_do_not_block_are_left_alone(call):
    assert blocking_in_handler(f"import asyncio\n{call}") == []


def blocking_in(source: str) -> list:
    module = parsed_module(ast.parse(textwrap.dedent(source)), "agent_server.agent", "agent_server/agent.py")
    return blocking_calls({module.name: module}, [(module.name, "handler")])


def test_a_tool_defined_inside_the_handler_and_called_through_a_dict_is_reached():
    """The shape of an on-behalf-of-user tool loop: tools built per request as closures over the user's client,
    looked up by the LLM's tool name. Their SQL and Genie calls run on the event loop."""
    found = blocking_in("""
        from databricks.sdk import WorkspaceClient

        def build_tools(w):
            def sales_report(region):
                return w.statement_execution.execute_statement(statement="select 1", warehouse_id="x")

            def ask_genie(question):
                return w.genie.start_conversation_and_wait("space", question)
            return {"sales_report": sales_report, "ask_genie": ask_genie}

        async def handler(request, w):
            tools = build_tools(w)
            return tools[request.name](**request.arguments)
        """)
    assert [(site.call, site.function) for site in found] == [
        ("w.statement_execution.execute_statement", "build_tools.sales_report"),
        ("w.genie.start_conversation_and_wait", "build_tools.ask_genie")]


def test_a_nested_function_handed_to_a_thread_is_not_blocking():
    found = blocking_in("""
        import asyncio

        async def handler(request, w):
            def run_query():
                return w.statement_execution.execute_statement(statement="select 1", warehouse_id="x")
            return await asyncio.to_thread(run_query)
        """)
    assert found == []
