"""What a Python file exported from a Databricks notebook carries that an app cannot run.

A notebook exported as source starts with `# Databricks notebook source`, separates cells with
`# COMMAND ----------` and keeps magic cells (`%pip`, `%md`, `%%writefile`) as `# MAGIC` comment lines. Its
code may use the notebook's globals (`dbutils`, `spark`, `display`), which exist only on a Databricks
cluster, and its last cells often try the agent (`AGENT.predict({...})`): at module level, such a test cell
runs at every import, so at every start of the app (an LLM call before the first request).
"""

from __future__ import annotations

import ast

NOTEBOOK_HEADER = "# Databricks notebook source"
CELL_SEPARATOR = "# COMMAND ----------"
MAGIC_PREFIX = "# MAGIC"
NOTEBOOK_GLOBALS = {"dbutils": "Databricks utilities (widgets, secrets, fs) exist only on a cluster",
                    "spark": "the notebook's Spark session exists only on a cluster",
                    "display": "the notebook's display() exists only in a notebook",
                    "displayHTML": "the notebook's displayHTML() exists only in a notebook",
                    "sc": "the notebook's SparkContext exists only on a cluster"}
AGENT_METHODS = {"predict", "predict_stream", "invoke", "stream", "ainvoke", "astream", "apredict",
                 "apredict_stream"}


def is_notebook(text: str) -> bool:
    return text.lstrip("\ufeff").startswith(NOTEBOOK_HEADER) or f"\n{CELL_SEPARATOR}" in text


def _bound_names(tree: ast.Module) -> set[str]:
    bound = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            bound |= {(alias.asname or alias.name).split(".")[0] for alias in node.names}
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            bound.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
    return bound


def notebook_global_uses(tree: ast.Module) -> list[tuple[int, str]]:
    """(line, name) of each use of a notebook global the module never defines or imports itself."""
    free = set(NOTEBOOK_GLOBALS) - _bound_names(tree)
    return sorted({(node.lineno, node.id) for node in ast.walk(tree)
                   if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id in free})


def agent_names(tree: ast.Module) -> set[str]:
    """Module-level names that hold the agent: instances of the module's classes and what set_model serves."""
    classes = {node.name for node in tree.body if isinstance(node, ast.ClassDef)}
    names = set()
    for node in ast.walk(tree):
        if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and isinstance(node.value.func, ast.Name)
                and node.value.func.id in classes):
            names |= {target.id for target in node.targets if isinstance(target, ast.Name)}
        elif (isinstance(node, ast.Call) and (ast.unparse(node.func).endswith("set_model")) and node.args
              and isinstance(node.args[0], ast.Name)):
            names.add(node.args[0].id)
    return names


def calls_agent(node: ast.AST, agents: set[str], functions: bool = False) -> str | None:
    """`AGENT.predict` when `node` contains a call of one of the agent's serving methods (with `functions`, also
    of a module-level `predict`/`predict_stream`: the extracted agent of an app)."""
    for inner in ast.walk(node):
        if (functions and isinstance(inner, ast.Call) and isinstance(inner.func, ast.Name)
                and inner.func.id in ("predict", "predict_stream")):
            return inner.func.id
        if (isinstance(inner, ast.Call) and isinstance(inner.func, ast.Attribute)
                and inner.func.attr in AGENT_METHODS and isinstance(inner.func.value, ast.Name)
                and inner.func.value.id in agents):
            return f"{inner.func.value.id}.{inner.func.attr}"
    return None


def module_level_agent_calls(tree: ast.Module, any_predict: bool = False) -> list[tuple[int, int, str]]:
    """(first line, last line, call) of each module-level statement that calls the agent (a test cell). With
    `any_predict`, a `predict`/`predict_stream` call on any name counts (in an app, the class may be gone)."""
    agents = agent_names(tree)
    if any_predict:
        agents |= {node.func.value.id for node in ast.walk(tree)
                   if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                   and node.func.attr in ("predict", "predict_stream") and isinstance(node.func.value, ast.Name)}
    found = []
    for statement in tree.body:
        if isinstance(statement, (ast.Expr, ast.Assign, ast.AnnAssign, ast.AugAssign, ast.For, ast.AsyncFor)):
            call = calls_agent(statement, agents, functions=any_predict)
            if call:
                found.append((statement.lineno, statement.end_lineno or statement.lineno, call))
    return found
