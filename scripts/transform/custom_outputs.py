"""The `custom_outputs` a ResponsesAgent's own predict returns, carried into async mode's invoke (issue 11 §5).

Async mode's invoke collects the stream's finished items (`handlers.py`), so the class's predict is not
called and what it added is lost. When predict returns `ResponsesAgentResponse(..., custom_outputs=EXPR)`
and EXPR reads only the request (`request.custom_inputs`, `dict(request.custom_inputs or {})`), the invoke
returns the same EXPR. Otherwise the code step names the line (COD009), and smoke's parity with the original
fails on the missing `custom_outputs` until it is added by hand.
"""

from __future__ import annotations

import ast
import builtins
from dataclasses import dataclass

import libcst as cst

HANDLER_REQUEST = "request"  # the generated handlers' parameter
RESPONSE_TYPES = ("ResponsesAgentResponse",)


@dataclass(frozen=True)
class PredictOutputs:
    source: str  # the expression as predict writes it
    path: str  # the original entry file, relative to the model
    line: int  # where, in it
    carried: str | None  # the expression rewritten for the handler's `request`; None when it cannot be carried
    reason: str = ""  # why it cannot be carried


class _Rename(ast.NodeTransformer):
    def __init__(self, old: str):
        self.old = old

    def visit_Name(self, node: ast.Name) -> ast.Name:
        return ast.Name(HANDLER_REQUEST, node.ctx) if node.id == self.old else node


def _custom_outputs_sites(function: ast.FunctionDef) -> list[ast.expr]:
    """`ResponsesAgentResponse(custom_outputs=X)` and `{"custom_outputs": X}` anywhere in predict."""
    sites = []
    for node in ast.walk(function):
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name in RESPONSE_TYPES:
                sites += [keyword.value for keyword in node.keywords if keyword.arg == "custom_outputs"]
        elif isinstance(node, ast.Dict):
            sites += [value for key, value in zip(node.keys, node.values)
                      if isinstance(key, ast.Constant) and key.value == "custom_outputs"]
    return sites


def _bound_inside(expression: ast.expr) -> set[str]:
    """Names a comprehension or lambda in the expression binds for itself."""
    bound = set()
    for node in ast.walk(expression):
        if isinstance(node, ast.comprehension):
            bound |= {name.id for name in ast.walk(node.target) if isinstance(name, ast.Name)}
        elif isinstance(node, ast.Lambda):
            bound |= {argument.arg for argument in node.args.args}
    return bound


def predict_outputs(class_node: cst.ClassDef | None, class_line: int | None, path: str) -> PredictOutputs | None:
    """What the class's own predict returns as custom_outputs; None when it returns none (or the class is not
    in the entry module)."""
    if class_node is None:
        return None
    tree = ast.parse(cst.Module([]).code_for_node(class_node).strip("\n"))
    klass = next(node for node in tree.body if isinstance(node, ast.ClassDef))
    predict = next((node for node in klass.body if isinstance(node, ast.FunctionDef) and node.name == "predict"), None)
    if predict is None or len(predict.args.args) < 2:
        return None
    sites = _custom_outputs_sites(predict)
    if not sites:
        return None
    first = sites[0]
    line = (class_line or klass.lineno) + first.lineno - klass.lineno
    source = ast.unparse(first)
    if len({ast.unparse(site) for site in sites}) > 1:
        return PredictOutputs(source, path, line, None, "predict returns different custom_outputs on different paths")
    parameter = predict.args.args[1].arg
    allowed = {parameter} | set(dir(builtins)) | _bound_inside(first)
    reads = sorted({node.id for node in ast.walk(first) if isinstance(node, ast.Name)} - allowed)
    if reads:
        return PredictOutputs(source, path, line, None, f"they read {', '.join(f'`{name}`' for name in reads)}, "
                                                  "not only the request")
    return PredictOutputs(source, path, line, ast.unparse(_Rename(parameter).visit(ast.parse(source, mode="eval")).body))
