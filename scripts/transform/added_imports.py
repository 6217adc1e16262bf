"""Imports the transform needs, added at the top of a module without walking the whole module.

libcst's AddImportsVisitor matches every node of the module, which took minutes on a 2 MB agent file; the
imports we add only need the module's top-level statements: which imports are there, and where the
leading block of imports ends.
"""

from __future__ import annotations

import libcst as cst

from scripts.transform.modules import dotted


def _is_docstring(statement: cst.BaseStatement) -> bool:
    return (isinstance(statement, cst.SimpleStatementLine) and len(statement.body) == 1
            and isinstance(statement.body[0], cst.Expr)
            and isinstance(statement.body[0].value, (cst.SimpleString, cst.ConcatenatedString)))


def _imports(statement: cst.BaseStatement) -> list[cst.Import | cst.ImportFrom]:
    if not isinstance(statement, cst.SimpleStatementLine):
        return []
    return [small for small in statement.body if isinstance(small, (cst.Import, cst.ImportFrom))]


def present_imports(module: cst.Module) -> set[tuple[str, str | None]]:
    """(module, name) of every top-level `from module import name` and (module, None) of `import module`."""
    present: set[tuple[str, str | None]] = set()
    for statement in module.body:
        for small in _imports(statement):
            if isinstance(small, cst.Import):
                present |= {(dotted(alias.name), None) for alias in small.names if alias.asname is None}
            elif not small.relative and small.module is not None and not isinstance(small.names, cst.ImportStar):
                owner = dotted(small.module)
                present |= {(owner, dotted(alias.name)) for alias in small.names if alias.asname is None}
    return present


def add_imports(module: cst.Module, needed: list[tuple[str, str | None]]) -> cst.Module:
    """`module` with an import for each needed (module, name) it lacks, after its leading imports."""
    present = present_imports(module)
    missing = [pair for pair in dict.fromkeys(needed) if pair not in present]
    if not missing:
        return module
    statements = [cst.parse_statement(f"from {owner} import {name}\n" if name else f"import {owner}\n")
                  for owner, name in missing]
    body = list(module.body)
    position = 1 if body and _is_docstring(body[0]) else 0
    scan = position
    while scan < len(body) and (_imports(body[scan]) or _is_docstring(body[scan])):
        scan += 1
        if _imports(body[scan - 1]):
            position = scan
    return module.with_changes(body=[*body[:position], *statements, *body[position:]])
