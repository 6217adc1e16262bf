"""An agent registered through a factory: `set_model(build_agent())`, `set_model(config.as_responses_agent())`.

The object Model Serving served is what the call returns, built with the factory's arguments. Creating the
class again with no arguments would drop them, so the code step keeps the call (`AGENT = build_agent()`) and
serves that object in wrapper mode. The class is followed through the factory's `return Class(...)` when
the factory is a function of the model's files; a method of a library object (`as_responses_agent()`) has no
class we can read, and the object is served as it is.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from scripts.model.agent_class import ClassIndex, ClassSite, SetModelCall
from scripts.model.names import dotted_name, module_level_statements, qualified
from scripts.model.source_file import SourceFile


@dataclass(frozen=True)
class Factory:
    expression: str  # `build_agent()`, as written in set_model(...)
    line: int
    returns: str | None  # the class its `return Class(...)` creates, when we can read it


def registered_call(entry: SourceFile, call: SetModelCall) -> ast.Call | None:
    """The call expression set_model registers (directly, or through a module-level name), if any."""
    assigned: dict[str, ast.expr] = {}
    for node in module_level_statements(entry.tree):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            assigned[node.targets[0].id] = node.value
    for node in entry.nodes:
        if isinstance(node, ast.Call) and getattr(node, "lineno", None) == call.line \
                and (dotted_name(node.func) or "").rsplit(".", 1)[-1] == "set_model":
            argument = node.args[0] if node.args else next(
                (keyword.value for keyword in node.keywords if keyword.arg == "model"), None)
            value = assigned.get(argument.id, argument) if isinstance(argument, ast.Name) else argument
            return value if isinstance(value, ast.Call) else None
    return None


def _function(index: ClassIndex, source: SourceFile, name: str) -> tuple[SourceFile, ast.FunctionDef] | None:
    for node in source.tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name:
            return source, node
    target = qualified(source, name) or name
    module, _, function = target.rpartition(".")
    other = index.modules.get(module)
    if other is not None and other is not source and other.tree is not None and "." not in function:
        return _function(index, other, function)
    return None


def _returned_class(index: ClassIndex, source: SourceFile, function: ast.AST) -> ClassSite | None:
    for node in ast.walk(function):
        if isinstance(node, ast.Return) and isinstance(node.value, ast.Call):
            site = index.lookup(source, dotted_name(node.value.func) or "")
            if site is not None:
                return site
    return None


def find_factory(index: ClassIndex, calls: list[SetModelCall]) -> tuple[Factory, ClassSite | None] | None:
    """The factory the last set_model registers through, and the class it returns when readable."""
    if not calls or index.entry is None or index.entry.tree is None:
        return None
    last = calls[-1]
    call = registered_call(index.entry, last)
    if call is None:
        return None
    callee = dotted_name(call.func) or ""
    if index.lookup(index.entry, callee) is not None:
        return None  # `set_model(MyAgent(...))`: the class itself
    found = _function(index, index.entry, callee) if callee else None
    site = _returned_class(index, *found) if found else None
    return Factory(ast.unparse(call), last.line, site.node.name if site else None), site


def factory_agent(factory: Factory, entry: SourceFile) -> dict:
    """analyze's agent_class for an object whose class is not in the model's files: served as it is."""
    absent = {"present": False}
    return {"name": factory.expression, "path": entry.path, "line": factory.line, "found_by": "factory",
            "base": "other", "bases": [], "base_chain": [factory.expression],
            "methods": {"predict": absent, "predict_stream": absent, "__init__": absent, "load_context": absent},
            "class_attributes": [], "factory": factory_facts(factory)}


def factory_facts(factory: Factory) -> dict:
    return {"expression": factory.expression, "line": factory.line, "returns": factory.returns}
