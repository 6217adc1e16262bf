"""A module exported from a Databricks notebook, cleaned for the app: magic cells and test cells dropped.

`# MAGIC` cells (`%pip install`, `%md`, `%%writefile`, `%restart_python`) are comments to Python and
instructions to the notebook: the app's dependencies come from `migrate setup`, so they are dropped with the
`# Databricks notebook source` header. A module-level statement that calls the agent's own predict,
predict_stream or invoke is a test cell: left in, it would call the LLM at every start of the app, so it is
dropped too. Uses of the notebook's globals (`dbutils`, `spark`, `display`) cannot be rewritten: each one is an
error site with its line (scripts/model/notebook.py finds them; the code check finds them again).
"""

from __future__ import annotations

import ast

from scripts.model.notebook import (CELL_SEPARATOR, MAGIC_PREFIX, NOTEBOOK_GLOBALS, NOTEBOOK_HEADER, is_notebook,
                                    module_level_agent_calls, notebook_global_uses)
from scripts.transform.container_paths import PatternSite

# Words without which a file has no test cell to look for (parsing every file again costs time on big ones).
AGENT_CALL_WORDS = (".predict", ".invoke", ".stream", ".apredict", ".ainvoke", ".astream")


def _cells(lines: list[str]) -> list[tuple[int, list[str]]]:
    """(number of the cell's first line, its lines) for each cell; the header is not part of any cell."""
    cells, current, start = [], [], 1
    for number, line in enumerate(lines, 1):
        if number == 1 and line.lstrip("\ufeff").startswith(NOTEBOOK_HEADER):
            start = 2
        elif line.strip() == CELL_SEPARATOR:
            cells.append((start, current))
            current, start = [], number + 1
        else:
            current.append(line)
    cells.append((start, current))
    return cells


def _drop_magic_cells(lines: list[str], removed: set[int]) -> tuple[list[str], list[tuple[int, str]]]:
    """The lines without the header, magic cells and cells left empty (or holding only the comments of a removed
    test cell); (line, first line) of each magic cell."""
    kept: list[list[str]] = []
    dropped = []
    for start, cell in _cells(lines):
        body = [(offset, text) for offset, text in enumerate(cell) if text.strip()]
        emptied = removed & set(range(start, start + len(cell))) and all(text.lstrip().startswith("#")
                                                                         for _, text in body)
        if body and all(text.lstrip().startswith(MAGIC_PREFIX) for _, text in body):
            dropped.append((start + body[0][0], body[0][1].strip()))
        elif body and not emptied:
            kept.append(cell[body[0][0]:body[-1][0] + 1])
    result: list[str] = []
    for cell in kept:
        result += (["", CELL_SEPARATOR, ""] if result else []) + cell
    return result, dropped


def clean_module(source: str, shown: str) -> tuple[str, list[PatternSite]]:
    """`source` without test cells, and for a notebook export without its magic cells; the sites to report
    (with the lines of the original file)."""
    sites: list[PatternSite] = []
    lines = source.splitlines()
    removed = []
    if any(word in source for word in AGENT_CALL_WORDS):
        try:
            removed = module_level_agent_calls(ast.parse(source))
        except SyntaxError:  # the caller reports the syntax error with its own line
            return source, sites
    for first, last, call in removed:
        lines[first - 1:last] = [""] * (last - first + 1)
        sites.append(PatternSite(
            "COD066", "warning", None,
            f"`{call}(...)` ran at module level (a test cell, line {first} of the model's file): removed from {shown}, "
            f"since it would call the agent at every start of the app",
            "nothing to do; to keep an example request, put it in a test or in the input example"))
    if is_notebook(source):
        gone = {number for first, last, _ in removed for number in range(first, last + 1)}
        lines, dropped = _drop_magic_cells(lines, gone)
        if dropped:
            sites.insert(0, PatternSite(
                "COD064", "info", None,
                f"{shown} is a notebook export: {len(dropped)} magic cell(s) dropped ("
                + "; ".join(f"line {number}: {text[:50]}" for number, text in dropped[:5]) + ")",
                "check that every `%pip install` package the notebook installed is in the app's dependencies "
                "(`migrate setup` takes them from the model's requirements.txt)"))
    elif not removed:
        return source, sites
    return "\n".join(lines) + "\n", sites


def notebook_global_sites(source: str) -> list[PatternSite]:
    """An error site for each use of `dbutils`, `spark`, `display` the module does not define itself."""
    if not any(name in source for name in NOTEBOOK_GLOBALS):
        return []
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    return [PatternSite("COD065", "error", line,
                        f"`{name}` is a notebook global: {NOTEBOOK_GLOBALS[name]}, so it is undefined in the app",
                        "replace it: widgets and constants → configuration (environment variables in app.yaml / "
                        ".env, or the model config); secrets → a `secret` app resource; Spark reads → the SQL "
                        "statement API or databricks-sql-connector; display → delete it")
            for line, name in notebook_global_uses(tree)]
