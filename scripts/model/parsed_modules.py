"""The app's modules as the call searches read them (blocking calls, request state, calls at import): each one's
import aliases, functions, module-level instances and the names holding a sync HTTP client; a very large module's
plain functions stay text until a search reaches them.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

from scripts.model.imports import import_aliases, package_of
from scripts.model.names import dotted_name

LANGCHAIN_MODULES = {"langchain", "langchain_core", "langchain_community", "langchain_openai", "langgraph",
                     "databricks_langchain"}
# A name holding one of these makes the calls on it blocking (scripts.model.blocking.kind_of).
HTTP_CLIENTS = {"httpx.Client", "requests.Session", "requests.sessions.Session"}


@dataclass
class ParsedModule:
    name: str  # agent_server.helpers
    path: str  # agent_server/helpers.py
    tree: ast.Module
    aliases: dict[str, str]
    functions: dict[str, ast.AST]  # "f" and "Class.method"
    instances: dict[str, str]  # module-level `AGENT = Class()` → "Class"
    uses_langchain: bool
    http_clients: set[str] = field(default_factory=set)  # "client", "self.http": names holding a sync HTTP client


def parsed_module(tree: ast.Module, name: str, path: str, is_package: bool = False,
                  nodes: list[ast.AST] | None = None) -> ParsedModule:
    """What the call searches need to know of one parsed module (`name` is its dotted import name)."""
    nodes = nodes if nodes is not None else list(ast.walk(tree))
    aliases = import_aliases(nodes, package_of(name, is_package))
    functions: dict[str, ast.AST] = {}
    instances: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            functions[node.name] = node
        elif isinstance(node, ast.ClassDef):
            for inner in node.body:
                if isinstance(inner, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    functions[f"{node.name}.{inner.name}"] = inner
        elif (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
              and isinstance(node.value, ast.Call) and isinstance(node.value.func, ast.Name)):
            instances[node.targets[0].id] = node.value.func.id
    instances.update(per_request_instances(tree, functions, instances))
    uses_langchain = any(target.split(".")[0] in LANGCHAIN_MODULES for target in aliases.values())
    module = ParsedModule(name, path, tree, aliases, functions, instances, uses_langchain)
    module.http_clients = http_client_names(module, nodes)
    return module


def per_request_instances(tree: ast.Module, functions: dict[str, ast.AST], instances: dict[str, str]) -> dict[str, str]:
    """Agents built per request (`request_agent = new_request_agent()` in a handler, where the factory returns
    `Class()`; scripts/transform/per_request.py): their method calls are followed like a module instance's."""
    classes = {node.name for node in tree.body if isinstance(node, ast.ClassDef)}
    made: dict[str, str] = {}
    for name, function in functions.items():
        built = {target.id: node.value.func.id for node in ast.walk(function) if isinstance(node, ast.Assign)
                 and isinstance(node.value, ast.Call) and isinstance(node.value.func, ast.Name)
                 and node.value.func.id in classes for target in node.targets if isinstance(target, ast.Name)}
        for node in ast.walk(function):
            if isinstance(node, ast.Return) and isinstance(node.value, ast.Name) and node.value.id in built:
                made[name] = built[node.value.id]
    found = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and isinstance(node.value.func, ast.Name) \
                and node.value.func.id in made:
            for target in node.targets:
                if isinstance(target, ast.Name) and target.id not in instances:
                    found[target.id] = made[node.value.func.id]
    return found


class LazyFunctions(dict):
    """Function name → node, where a large file's plain functions stay text until the search reaches them."""

    def __getitem__(self, key):
        value = super().__getitem__(key)
        if isinstance(value, tuple):  # (source text, lines before it): parsed on first use
            tree = ast.parse(value[0])
            ast.increment_lineno(tree, value[1])
            value = tree.body[0]
            super().__setitem__(key, value)
        return value

    def get(self, key, default=None):
        return self[key] if key in self else default

    def items(self):
        return [(key, self[key]) for key in self]

    def values(self):
        return [self[key] for key in self]


LARGE_MODULE = 200_000  # bytes: above this the code step parses a module's plain functions only when reached
# A function holding one of these words changes what other calls mean (imports, sync clients): parse it.
EAGER_WORDS = ("import", "Client", "Session", "global")


def _parsed_large(source: str, name: str, path: str, is_package: bool) -> ParsedModule | None:
    """A large module parsed one top-level statement at a time; plain functions kept as text (LazyFunctions)."""
    from scripts.model.statements import NotCut, top_level_statements

    kept: list[ast.stmt] = []
    lazy: dict[str, tuple[str, int]] = {}
    line = 0
    try:
        for text, tree in top_level_statements(source):
            node = tree.body[0] if len(tree.body) == 1 else None
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not any(
                    word in text for word in EAGER_WORDS):
                lazy[node.name] = (text, line)
            else:
                ast.increment_lineno(tree, line)
                kept.extend(tree.body)
            line += text.count("\n")
    except NotCut:
        return None
    module = parsed_module(ast.Module(body=kept, type_ignores=[]), name, path, is_package)
    functions = LazyFunctions(lazy)
    functions.update(module.functions)
    module.functions = functions
    return module


def parse_app_modules(package_dir: Path, package: str = "agent_server", lazy: bool = False) -> dict[str, ParsedModule]:
    """Every module under `package_dir` (the app's agent_server/, or a staging copy of it), by dotted name;
    `lazy` (the code step): a large module's plain functions are parsed only when the search reaches them."""
    modules = {}
    for path in sorted(package_dir.rglob("*.py")):
        relative = Path(package) / path.relative_to(package_dir)
        if "__pycache__" in relative.parts:
            continue
        parts = list(relative.with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        name = ".".join(parts)
        data = path.read_bytes()
        if lazy and len(data) > LARGE_MODULE:
            large = _parsed_large(data.decode("utf-8", "replace"), name, relative.as_posix(), path.name == "__init__.py")
            if large is not None:
                modules[name] = large
                continue
        try:
            tree = ast.parse(data, filename=str(relative))
        except (SyntaxError, ValueError):
            continue
        modules[name] = parsed_module(tree, name, relative.as_posix(), is_package=path.name == "__init__.py")
    return modules


def resolved_name(written: str, module: ParsedModule) -> str:
    head, _, rest = written.partition(".")
    target = module.aliases.get(head, head)
    return f"{target}.{rest}" if rest else target


def http_client_names(module: ParsedModule, nodes: list[ast.AST]) -> set[str]:
    """Names a sync HTTP client is assigned to: module-level names, and `self.x` in any method."""
    names = set()
    for node in nodes:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and \
                resolved_name(dotted_name(node.value.func) or "", module) in HTTP_CLIENTS:
            for target in node.targets:
                if isinstance(target, ast.Name) or (isinstance(target, ast.Attribute)
                                                    and isinstance(target.value, ast.Name) and target.value.id == "self"):
                    names.add(ast.unparse(target))
    return names
