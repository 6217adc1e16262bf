"""Async-native agents: the class's own async methods, which the handlers call instead of its sync wrappers.

Agents written async-first have `async def apredict`/`apredict_stream` and keep `predict`/`predict_stream`
only because Model Serving calls those, as wrappers that start a loop per call
(`return asyncio.run(self.apredict(request))`, or `loop.run_until_complete(gen.__anext__())` in a loop).
Under the app's server, which already runs an event loop, such a wrapper fails or nests loops. The handlers
therefore call the async method itself: awaited on the server's loop in async mode, on one shared background
loop in sync mode (`agent_server/loop_bridge.py`).
"""

from __future__ import annotations

import libcst as cst

from scripts.transform.modules import dotted

# A sync method → the async method an author writes next to it.
TWIN_NAMES = {"predict": "apredict", "predict_stream": "apredict_stream"}
LOOP_CALLS = ("run", "run_until_complete")


def _async_methods(node: cst.ClassDef) -> dict[str, cst.FunctionDef]:
    return {statement.name.value: statement for statement in node.body.body
            if isinstance(statement, cst.FunctionDef) and statement.asynchronous is not None}


def _self_calls_in_loop_calls(function: cst.FunctionDef) -> set[str]:
    """`X` of every `asyncio.run(self.X(...))`/`loop.run_until_complete(self.X(...))` in `function`."""
    found: set[str] = set()

    class Finder(cst.CSTVisitor):
        def visit_Call(self, node):
            if (dotted(node.func) or "").rsplit(".", 1)[-1] in LOOP_CALLS and node.args:
                argument = node.args[0].value
                if isinstance(argument, cst.Call):
                    name = dotted(argument.func) or ""
                    if name.startswith("self.") and name.count(".") == 1:
                        found.add(name.split(".")[1])

    function.visit(Finder())
    return found


def _self_attributes(function: cst.FunctionDef) -> set[str]:
    found: set[str] = set()

    class Finder(cst.CSTVisitor):
        def visit_Attribute(self, node):
            if isinstance(node.value, cst.Name) and node.value.value == "self":
                found.add(node.attr.value)

    function.visit(Finder())
    return found


def async_twins(node: cst.ClassDef | None) -> dict[str, str]:
    """For `predict`/`predict_stream`, the async method of the class the handlers call instead: the one named
    `apredict`/`apredict_stream`, or the async method the sync one only runs in a loop of its own."""
    if node is None:
        return {}
    asynchronous = _async_methods(node)
    sync = {statement.name.value: statement for statement in node.body.body
            if isinstance(statement, cst.FunctionDef) and statement.asynchronous is None}
    twins: dict[str, str] = {}
    for method, twin in TWIN_NAMES.items():
        if twin in asynchronous:
            twins[method] = twin
        elif method in sync:
            wrapped = _self_calls_in_loop_calls(sync[method]) & set(asynchronous)
            if method == "predict_stream" and not wrapped:  # `gen = self.astream(...)` stepped by a loop helper
                wrapped = {name for name in _self_attributes(sync[method]) & set(asynchronous)
                           if _yields(asynchronous[name])}
            if len(wrapped) == 1:
                twins[method] = wrapped.pop()
    return twins


def _yields(function: cst.FunctionDef) -> bool:
    found = False

    class Finder(cst.CSTVisitor):
        def visit_FunctionDef(self, inner):
            return inner is function

        def visit_Yield(self, inner):
            nonlocal found
            found = True

    function.visit(Finder())
    return found
