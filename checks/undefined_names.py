"""COD023: a name the entry module uses but never defines, imports or gets from Python's builtins.

The app imports fine and answers nothing: the NameError comes only when a request reaches the name. A
transform that dropped a function another one calls, or a hand edit that renamed one, looks finished to
every other check. Read with `ast` and the standard library's symbol tables (no run), on
`agent_server/agent.py`, the file `migrate code` writes. Skipped: a module with a star import (its names cannot
be known) and one over 1 MB (reading a 2.5 MB module's scopes takes ~10 s and ~400 MB more).
"""

from __future__ import annotations

import ast
import builtins
import symtable
from pathlib import Path

from scripts.core.findings import Finding

# Names every module has without defining them.
MODULE_NAMES = {"__file__", "__name__", "__doc__", "__spec__", "__loader__", "__package__", "__builtins__",
                "__path__", "__annotations__", "__dict__", "__cached__"}
# A notebook's injected globals have their own finding (COD065, checks/code_patterns.py).
NOTEBOOK_GLOBALS = {"spark", "dbutils", "display", "displayHTML", "sc", "sqlContext", "getArgument"}
KNOWN = set(dir(builtins)) | MODULE_NAMES | NOTEBOOK_GLOBALS
LARGEST = 1_000_000  # bytes


class _ModuleScope(ast.NodeVisitor):
    """Names the module's own scope binds and reads. (symtable's module-level symbols cost time quadratic in the
    number of functions: 70 s on a 40k-function file; its nested scopes are cheap and read below.)"""

    def __init__(self):
        self.bound: set[str] = set()
        self.read: set[str] = set()

    def _header(self, node, names: list[str]):
        self.bound.update(names)
        for expression in [*node.decorator_list, *getattr(node, "bases", []),
                           *(keyword.value for keyword in getattr(node, "keywords", []))]:
            self.visit(expression)

    def visit_FunctionDef(self, node):  # its body is a scope of its own; defaults run here
        self._header(node, [node.name])
        for default in [*node.args.defaults, *(value for value in node.args.kw_defaults if value is not None)]:
            self.visit(default)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node):
        self._header(node, [node.name])

    def visit_Lambda(self, node):
        for default in [*node.args.defaults, *(value for value in node.args.kw_defaults if value is not None)]:
            self.visit(default)

    def _comprehension(self, node):  # only the first iterable is evaluated in this scope
        self.visit(node.generators[0].iter)

    visit_ListComp = visit_SetComp = visit_DictComp = visit_GeneratorExp = _comprehension

    def visit_Import(self, node):
        self.bound.update((alias.asname or alias.name).split(".")[0] for alias in node.names)

    def visit_ImportFrom(self, node):
        self.bound.update(alias.asname or alias.name for alias in node.names)

    def visit_Name(self, node):
        (self.read if isinstance(node.ctx, ast.Load) else self.bound).add(node.id)

    def visit_ExceptHandler(self, node):
        if node.name:
            self.bound.add(node.name)
        self.generic_visit(node)

    def visit_MatchAs(self, node):
        if node.name:
            self.bound.add(node.name)
        self.generic_visit(node)

    visit_MatchStar = visit_MatchAs

    def visit_AnnAssign(self, node):  # the annotation may never be evaluated (`from __future__ import annotations`)
        self.visit(node.target)
        if node.value is not None:
            self.visit(node.value)


def _nested_symbols(table: symtable.SymbolTable):
    """Every symbol of every scope inside `table` (functions, classes, comprehensions, lambdas)."""
    for child in table.get_children():
        yield from child.get_symbols()
        yield from _nested_symbols(child)


def undefined_names(source: str, filename: str) -> list[tuple[str, int]]:
    """`(name, first line it is read)` for every module-level name read and bound nowhere, in line order."""
    tree = ast.parse(source, filename)
    if any(isinstance(node, ast.ImportFrom) and any(alias.name == "*" for alias in node.names)
           for node in ast.walk(tree)):
        return []
    scope = _ModuleScope()
    scope.visit(tree)
    nested = list(_nested_symbols(symtable.symtable(source, filename, "exec")))
    # `global x` then `x = ...` in a function binds x in the module too.
    bound = scope.bound | {symbol.get_name() for symbol in nested
                           if symbol.is_declared_global() and symbol.is_assigned()}
    read = scope.read | {symbol.get_name() for symbol in nested if symbol.is_referenced() and symbol.is_global()}
    missing = read - bound - KNOWN
    first_read: dict[str, int] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in missing and isinstance(node.ctx, ast.Load):
            first_read[node.id] = min(first_read.get(node.id, node.lineno), node.lineno)
    return sorted(first_read.items(), key=lambda item: (item[1], item[0]))


def undefined_name_findings(app: Path, entry: str) -> list[Finding]:
    try:
        source = (app / entry).read_text(encoding="utf-8")
        found = undefined_names(source, entry) if len(source) <= LARGEST else []
    except (SyntaxError, ValueError, OSError):
        return []  # an unreadable module has its own finding (COD012 from the import probe)
    return [Finding("COD023", "error", f"{app.name}/{entry}:{line}",
                    f"`{name}` is used but never defined, imported or built in: the first request that reaches it "
                    f"fails with NameError",
                    f"define or import `{name}` in {entry}; if `migrate code` wrote it this way, it is a bug in "
                    f"agent-migrate: report it")
            for name, line in found]
