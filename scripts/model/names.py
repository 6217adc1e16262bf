"""Names in a parsed file: dotted names, what a local name was imported as, the statements run at import."""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scripts.model.source_file import SourceFile


def dotted_name(node: ast.AST) -> str | None:
    """`a.b.c` for a Name/Attribute chain (through calls and subscripts: `OpenAI().chat` → `OpenAI.chat`)."""
    parts = []
    while True:
        if isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        elif isinstance(node, (ast.Call, ast.Subscript)):
            node = node.func if isinstance(node, ast.Call) else node.value
        elif isinstance(node, ast.Name):
            parts.append(node.id)
            return ".".join(reversed(parts))
        else:
            return None




def qualified(source: SourceFile, dotted: str | None) -> str | None:
    """`dotted` with its first name replaced by what it was imported as."""
    if dotted is None:
        return None
    head, _, rest = dotted.partition(".")
    target = source.aliases.get(head, head)
    return f"{target}.{rest}" if rest else target


def module_level_statements(tree: ast.Module):
    """Statements run at import time: the module body and the bodies of its top-level if/try/with blocks."""
    pending = list(tree.body)
    while pending:
        node = pending.pop(0)
        yield node
        if isinstance(node, (ast.If, ast.Try, ast.With)):
            for block in ("body", "orelse", "finalbody", "handlers"):
                pending.extend(getattr(node, block, []))
        elif isinstance(node, ast.ExceptHandler):
            pending.extend(node.body)


def yields(function: ast.AST) -> bool:
    """Whether `function`'s own body yields (a yield in a nested function does not count)."""
    pending = list(ast.iter_child_nodes(function))
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.Yield, ast.YieldFrom)):
            return True
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            pending.extend(ast.iter_child_nodes(node))
    return False
