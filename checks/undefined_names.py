"""COD023: a name the entry module uses but never defines, imports or gets from Python's builtins.

The app imports fine and answers nothing: the NameError comes only when a request reaches the name. A
transform that dropped a function another one calls, or a hand edit that renamed one, looks finished to
every other check. Read with the standard library's symbol tables (no run), on `agent_server/agent.py`,
the file `migrate code` writes; a module with a star import is skipped (its names cannot be known).
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


def _module_bindings(top: symtable.SymbolTable) -> set[str]:
    return {symbol.get_name() for symbol in top.get_symbols()
            if symbol.is_assigned() or symbol.is_imported() or symbol.is_namespace()}


def _globals_read(table: symtable.SymbolTable) -> set[str]:
    """Names each nested scope reads from the module (implicit or declared globals)."""
    names = set()
    for child in table.get_children():
        names |= {symbol.get_name() for symbol in child.get_symbols()
                  if symbol.is_referenced() and symbol.is_global()}
        names |= _globals_read(child)
    return names


def _declared_global_writes(table: symtable.SymbolTable) -> set[str]:
    """`global x` then `x = ...` in a function binds x in the module too."""
    names = set()
    for child in table.get_children():
        names |= {symbol.get_name() for symbol in child.get_symbols()
                  if symbol.is_declared_global() and symbol.is_assigned()}
        names |= _declared_global_writes(child)
    return names


def undefined_names(source: str, filename: str) -> list[tuple[str, int]]:
    """`(name, first line it is read)` for every module-level name read and bound nowhere, in line order."""
    tree = ast.parse(source, filename)
    if any(isinstance(node, ast.ImportFrom) and any(alias.name == "*" for alias in node.names)
           for node in ast.walk(tree)):
        return []
    top = symtable.symtable(source, filename, "exec")
    bound = _module_bindings(top)
    bound |= _declared_global_writes(top)
    read_at_top = {symbol.get_name() for symbol in top.get_symbols() if symbol.is_referenced()}
    missing = (read_at_top | _globals_read(top)) - bound - KNOWN
    first_read: dict[str, int] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in missing and isinstance(node.ctx, ast.Load):
            first_read[node.id] = min(first_read.get(node.id, node.lineno), node.lineno)
    return sorted(first_read.items(), key=lambda item: (item[1], item[0]))


def undefined_name_findings(app: Path, entry: str) -> list[Finding]:
    try:
        source = (app / entry).read_text(encoding="utf-8")
        found = undefined_names(source, entry)
    except (SyntaxError, ValueError, OSError):
        return []  # an unreadable module has its own finding (COD012 from the import probe)
    return [Finding("COD023", "error", f"{app.name}/{entry}:{line}",
                    f"`{name}` is used but never defined, imported or built in: the first request that reaches it "
                    f"fails with NameError",
                    f"define or import `{name}` in {entry}; if `migrate code` wrote it this way, it is a bug in "
                    f"agent-migrate: report it")
            for name, line in found]
