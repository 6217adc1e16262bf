"""The syntax rewrites extract mode makes to the agent's methods: receivers to module names, parameters
dropped, `global` declarations, `async def`, `yield from` as a loop."""

from __future__ import annotations

import libcst as cst

from scripts.transform.agent_safety import is_docstring


class Rewriter(cst.CSTTransformer):
    """`self.x`/`Class.x`/`INSTANCE.x` → module names; rename class attributes inside the class body."""

    def __init__(self, receivers: set[str], names: dict[str, str], helpers: dict[str, str]):
        self.receivers = receivers
        self.names = names
        self.helpers = helpers
        self.used_helpers: set[str] = set()

    def leave_Attribute(self, original_node, updated_node):
        if isinstance(updated_node.value, cst.Name) and updated_node.value.value in self.receivers:
            attribute = updated_node.attr.value
            if attribute in self.names:
                return cst.Name(self.names[attribute])
            if attribute in self.helpers:
                self.used_helpers.add(self.helpers[attribute])
                return cst.Name(self.helpers[attribute])
        return updated_node


def drop_first_param(function: cst.FunctionDef) -> cst.FunctionDef:
    params = function.params
    if params.posonly_params:
        return function.with_changes(params=params.with_changes(posonly_params=params.posonly_params[1:]))
    return function.with_changes(params=params.with_changes(params=params.params[1:]))


def without_param(function: cst.FunctionDef, name: str) -> cst.FunctionDef:
    params = function.params
    kept = [param for param in params.params if param.name.value != name]
    kw_kept = [param for param in params.kwonly_params if param.name.value != name]
    if kept:
        kept[-1] = kept[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
    return function.with_changes(params=params.with_changes(params=kept, kwonly_params=kw_kept))


def with_global(function: cst.FunctionDef, names: list[str]) -> cst.FunctionDef:
    statement = cst.SimpleStatementLine([cst.Global([cst.NameItem(cst.Name(name)) for name in names])])
    body = list(function.body.body)
    position = 1 if body and is_docstring(body[0]) else 0
    body.insert(position, statement)
    return function.with_changes(body=function.body.with_changes(body=body))


def make_async(function: cst.FunctionDef) -> cst.FunctionDef:
    return function.with_changes(asynchronous=cst.Asynchronous()).visit(_YieldFromToLoop())


class _YieldFromToLoop(cst.CSTTransformer):
    """`yield from x` is not allowed in an async generator: `for item in x: yield item`."""

    def leave_SimpleStatementLine(self, original_node, updated_node):
        if len(updated_node.body) == 1 and isinstance(updated_node.body[0], cst.Expr):
            value = updated_node.body[0].value
            if isinstance(value, cst.Yield) and isinstance(value.value, cst.From):
                loop = cst.parse_statement("for _item in _iterable:\n    yield _item\n")
                loop = loop.with_changes(iter=value.value.item, leading_lines=updated_node.leading_lines)
                return loop
        return updated_node

    def visit_FunctionDef(self, node):
        return True


class NameRenamer(cst.CSTTransformer):
    def __init__(self, names: dict[str, str]):
        self.names = names

    def leave_Attribute(self, original_node, updated_node):
        return updated_node.with_changes(attr=original_node.attr)

    def leave_Name(self, original_node, updated_node):
        return updated_node.with_changes(value=self.names.get(updated_node.value, updated_node.value))


def rename_target(small, name: str):
    if isinstance(small, cst.Assign):
        return small.with_changes(targets=[small.targets[0].with_changes(target=cst.Name(name))])
    return small.with_changes(target=cst.Name(name))


def with_leading(statements: list[cst.BaseStatement], replaced: cst.BaseStatement) -> list[cst.BaseStatement]:
    """`statements` taking the place of `replaced`, keeping the comments and blank lines above it."""
    if not statements:
        return []
    first = statements[0]
    return [first.with_changes(leading_lines=[*replaced.leading_lines, *first.leading_lines]), *statements[1:]]
