"""A Python source cut into its top-level statements one at a time, with ast only: what lets the code step and
the blocking-call search handle a multi-megabyte agent file without holding one tree of the whole file."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator

_CONTINUES = re.compile(r"(else|elif|except|finally)\b")


def _starts_statement(line: str) -> bool:
    return bool(line) and line[0] not in " \t#\r\n\f)]}" and not _CONTINUES.match(line)


class NotCut(Exception):
    """The file does not cut cleanly into top-level statements (or only at too high a cost)."""


def top_level_statements(source: str) -> Iterator[tuple[str, ast.Module]]:
    """The source as consecutive pieces that each parse alone, one top-level statement (with the comments
    and blank lines after it) per piece, one at a time so only one piece's tree is alive; NotCut at the end
    when the file does not cut cleanly."""
    lines = source.splitlines(keepends=True)
    starts = [number for number, line in enumerate(lines) if number and _starts_statement(line)]
    start, parsed = 0, 0
    for end in [*starts, len(lines)]:
        text = "".join(lines[start:end])
        parsed += len(text)
        if parsed > 4 * len(source):  # long strings with code-like lines: not worth cutting
            raise NotCut
        try:
            tree = ast.parse(text)
        except (SyntaxError, ValueError):
            continue  # the line was inside a string or a bracket: the statement goes on
        yield text, tree
        start = end
    if start != len(lines):
        raise NotCut
