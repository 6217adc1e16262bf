"""Every entry of the blocking-call table classifies its own example, in an async handler, as its kind."""

from __future__ import annotations

import ast
import textwrap

import pytest

from scripts.model.blocking import ASYNC_EQUIVALENT, blocking_calls, parsed_module
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
