"""Calls that block an event loop, where an async handler reaches them: the code step lists them, the check fails on them.

A call is judged by its name only (no type inference), after resolving import aliases. Reached means: in an
`async def`, or in a function of the app that such code calls by name (through imports between the app's
modules, a module-level instance's methods, and `self.method()` inside a class), or in a function defined
inside a reached one (tools built per request and called through a dict), unless it is handed to a thread. A sync HTTP client kept in a
name (`client = httpx.Client()`, `self.http = httpx.Client()` in `__init__`) makes the calls on that name
blocking too. Awaited calls are async already and are left out.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from scripts.model.blocking_table import INSTEAD, kind_by_name
from scripts.model.names import dotted_name, yields
from scripts.model.parsed_modules import LazyFunctions, ParsedModule, resolved_name

# What to use instead of each kind of blocking call (the table of call patterns is blocking_table.py).
ASYNC_EQUIVALENT = INSTEAD
# Calls that run the function they are given in a worker thread, off the event loop.
OFFLOADERS = {"to_thread", "run_in_executor", "run_sync", "run_in_threadpool", "submit"}
HTTP_METHODS = {"get", "post", "put", "patch", "delete", "head", "options", "request", "stream", "send"}


@dataclass(frozen=True)
class BlockingCall:
    path: str  # relative to the app folder
    line: int
    call: str
    kind: str
    function: str

    @property
    def fix(self) -> str:
        return f"replace `{self.call}` with {ASYNC_EQUIVALENT[self.kind]}"


def kind_of(call: ast.Call, module: ParsedModule) -> str | None:
    written = dotted_name(call.func) or ""
    name = resolved_name(written, module)
    last = name.rsplit(".", 1)[-1]
    # The module's own functions and clients only: `requests.get(url).json()` is one blocking call, not two.
    by_name = kind_by_name(name, written)
    if by_name:
        return by_name
    if "." in written and written.rsplit(".", 1)[0] in module.http_clients and last in HTTP_METHODS:
        return "http"
    # databricks-sdk's `serving_endpoints.get_open_ai_client()` returns a sync `openai.OpenAI`.
    if last in {"OpenAI", "AzureOpenAI", "DatabricksOpenAI", "get_open_ai_client"}:
        return "sync-client"
    if isinstance(call.func, ast.Attribute):
        parts = written.split(".")
        if last == "create" and {"completions", "responses", "embeddings"} & set(parts[:-1]):
            return "llm-call"
        if module.uses_langchain and last in {"invoke", "stream", "batch"}:
            return "langchain-call"
    return None


class _Calls(ast.NodeVisitor):
    """Blocking calls in one function's own body, and the app functions it calls."""

    def __init__(self, module: ParsedModule, function: ast.AST, in_async: bool):
        self.module = module
        self.function = function
        self.in_async = in_async
        self.awaited: set[int] = set()
        self.sites: list[tuple[ast.Call, str]] = []
        self.callees: list[ast.Call] = []
        # Functions defined inside this one (tools built per request, dispatched through a dict or a list):
        # reached with it, unless handed to a thread (`asyncio.to_thread(tool)`), where blocking is the point.
        self.nested: list[ast.AST] = []
        self.offloaded: set[str] = set()

    def visit_FunctionDef(self, node):
        if node is self.function:
            self.generic_visit(node)
        else:
            self.nested.append(node)

    def reached_nested(self) -> list[ast.AST]:
        return [node for node in self.nested if node.name not in self.offloaded]

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Lambda(self, node):
        return

    def visit_Await(self, node):
        self.awaited.add(id(node.value))
        self.generic_visit(node)

    def visit_AsyncWith(self, node):
        self.awaited.update(id(item.context_expr) for item in node.items)
        self.generic_visit(node)

    def visit_AsyncFor(self, node):
        self.awaited.add(id(node.iter))
        self.generic_visit(node)

    def visit_For(self, node):
        if self.in_async and isinstance(node.iter, ast.Call) and self.iterates_generator(node.iter):
            self.sites.append((node.iter, "sync-iteration"))
            self.awaited.add(id(node.iter))
        self.generic_visit(node)

    def iterates_generator(self, call: ast.Call) -> bool:
        name = dotted_name(call.func) or ""
        if name.endswith(".predict_stream"):
            return True
        resolved = resolve(self.module, call, {})
        return resolved is not None and resolved[1] is not None and _is_sync_generator(resolved[1])

    def visit_Call(self, node):
        if (dotted_name(node.func) or "").rsplit(".", 1)[-1] in OFFLOADERS:
            self.offloaded.update(arg.id for arg in node.args if isinstance(arg, ast.Name))
        kind = None if id(node) in self.awaited else kind_of(node, self.module)
        if kind:
            self.sites.append((node, kind))
        else:
            self.callees.append(node)
        self.generic_visit(node)


def _is_sync_generator(function: ast.AST) -> bool:
    return isinstance(function, ast.FunctionDef) and yields(function)


def resolve(module: ParsedModule, call: ast.Call, modules: dict[str, ParsedModule],
            caller: str = "") -> tuple[str, ast.AST | None] | None:
    """The app function a call names: `f()`, `helpers.f()`, `AGENT.method()`, `self.method()` inside the
    class of `caller` ("Class.method"); (module, node) or None."""
    name = dotted_name(call.func) or ""
    head, _, rest = name.partition(".")
    if head == "self" and "." in caller and rest and "." not in rest:
        key = f"{caller.split('.')[0]}.{rest}"
        return (module.name, module.functions[key]) if key in module.functions else None
    if not rest:
        if head in module.functions:
            return module.name, module.functions[head]
        target = module.aliases.get(head)
        if target and "." in target:
            owner, function = target.rsplit(".", 1)
            if owner in modules and function in modules[owner].functions:
                return owner, modules[owner].functions[function]
        return None
    if head in module.instances and "." not in rest:
        key = f"{module.instances[head]}.{rest}"
        return (module.name, module.functions[key]) if key in module.functions else None
    target = module.aliases.get(head)
    if target in modules and rest in modules[target].functions:
        return target, modules[target].functions[rest]
    return None


def blocking_calls(modules: dict[str, ParsedModule], roots: list[tuple[str, str]] | None = None) -> list[BlockingCall]:
    """Blocking calls reached from async functions (all of the app's, or the given (module, function) roots)."""
    pending: list[tuple[str, ast.AST, str]] = []
    for module in modules.values():
        for qualified in list(module.functions):
            if roots is not None and (module.name, qualified) not in roots:
                continue
            function = module.functions[qualified]
            if roots is not None or isinstance(function, ast.AsyncFunctionDef):
                pending.append((module.name, function, qualified))
    seen: set[int] = set()
    found: dict[tuple[str, int, str], BlockingCall] = {}
    while pending:
        module_name, function, qualified = pending.pop()
        if id(function) in seen:
            continue
        seen.add(id(function))
        module = modules[module_name]
        visitor = _Calls(module, function, isinstance(function, ast.AsyncFunctionDef))
        visitor.visit(function)
        for call, kind in visitor.sites:
            written = dotted_name(call.func) or ast.unparse(call.func)
            found[(module.path, call.lineno, written)] = BlockingCall(module.path, call.lineno, written, kind, qualified)
        pending.extend((module_name, inner, f"{qualified}.{inner.name}") for inner in visitor.reached_nested())
        for call in visitor.callees:
            resolved = resolve(module, call, modules, qualified)
            if resolved and resolved[1] is not None:
                owner = modules[resolved[0]]
                name = next(key for key in owner.functions if owner.functions[key] is resolved[1]) \
                    if not isinstance(owner.functions, LazyFunctions) else _key_of(owner.functions, resolved[1])
                pending.append((resolved[0], resolved[1], name))
    return sorted(found.values(), key=lambda site: (site.path, site.line))


def _key_of(functions: LazyFunctions, node: ast.AST) -> str:
    """The name a parsed function is kept under, without parsing the ones not reached yet."""
    return next(key for key, value in dict.items(functions) if value is node)
