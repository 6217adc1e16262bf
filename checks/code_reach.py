"""What of the app's code serves requests, so the code check judges that and leaves the rest of a copied package alone.

A code_paths package is copied whole: an `async def` no handler reaches, or a ChatModel class nothing uses,
ran on Model Serving exactly as much as it runs in the app (never). Flagging them blocks a correct app.
From the app's files alone:
- the roots of the blocking-call search are the entry module's `@invoke`/`@stream` handlers, plus the async
  functions a framework may call: module functions referenced as values (`graph.add_node("n", fetch)`,
  `tools=[lookup]`), and the async methods of classes the app uses; what those call by name is followed by
  `scripts.model.blocking.blocking_calls`;
- a class is used when its name appears as a value anywhere in the app (created, returned by a factory,
  passed along, subclassed by a used class).
"""

from __future__ import annotations

import ast

from scripts.model.parsed_modules import ParsedModule
from scripts.model.names import dotted_name

HANDLER_DECORATORS = ("invoke", "stream")


def _handlers(module: ParsedModule) -> list[str]:
    names = []
    for node in module.tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            decorators = [(dotted_name(decorator.func if isinstance(decorator, ast.Call) else decorator) or "")
                          .rsplit(".", 1)[-1] for decorator in node.decorator_list]
            if any(name in HANDLER_DECORATORS for name in decorators):
                names.append(node.name)
    return names


def names_used(modules: dict[str, ParsedModule]) -> tuple[set[str], set[str]]:
    """Names read anywhere in the app: (all of them, those read other than as the function of a call)."""
    used, as_values = set(), set()
    for module in modules.values():
        callees = {id(node.func) for node in ast.walk(module.tree) if isinstance(node, ast.Call)}
        for node in ast.walk(module.tree):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
                used.add(node.id)
                if id(node) not in callees:
                    as_values.add(node.id)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
                used.add(node.attr)
                if id(node) not in callees:
                    as_values.add(node.attr)
    return used, as_values


def used_classes(modules: dict[str, ParsedModule]) -> set[str]:
    """Class names read anywhere in the app, and the bases of those classes (followed by name)."""
    used, _ = names_used(modules)
    bases_of = {node.name: {(dotted_name(base) or "").rsplit(".", 1)[-1] for base in node.bases}
                for module in modules.values() for node in ast.walk(module.tree) if isinstance(node, ast.ClassDef)}
    found, pending = set(), [name for name in bases_of if name in used]
    while pending:
        name = pending.pop()
        if name not in found:
            found.add(name)
            pending.extend(bases_of.get(name, ()))
    return found


def request_roots(modules: dict[str, ParsedModule], entry: str) -> list[tuple[str, str]]:
    """(module, function) pairs a request can reach first: the handlers and what a framework may call."""
    _, as_values = names_used(modules)
    classes = used_classes(modules)
    roots = [(entry, name) for name in _handlers(modules[entry])] if entry in modules else []
    for module in modules.values():
        for qualified, function in module.functions.items():
            if not isinstance(function, ast.AsyncFunctionDef):
                continue
            owner, _, name = qualified.rpartition(".")
            if (owner and owner in classes) or (not owner and name in as_values):
                roots.append((module.name, qualified))
    return roots
