"""A large entry module, cut so the libcst transforms only parse the statements they may change.

libcst builds a node object for every token: a 2.2 MB agent file (40,000 helper functions) took 30 s and
1 GB to parse once here, and the code step parsed, walked and rendered it several times (issue 14: 718 s,
1.1 GB). Most of such a file is functions no transform touches. So, above `LARGE_SOURCE` bytes, the source
is cut into its top-level statements (`ast`, one statement at a time, so memory stays small) and every
top-level `def`/`class` whose text holds none of `KEEP_WORDS` (and is not the agent class) is hidden: each
run of them becomes one marker comment line (`original_line` maps a line of the transformed text back to the
file's). After the transforms the hidden text is put back verbatim. Whenever that cannot be done exactly (a
marker moved or vanished), `restore` says so and the caller transforms the whole file instead. Every word of
the hidden text counts as a taken name (a superset of the variables it uses: new names never collide).

A transform that rewrites code on seeing some word must add that word here, or it will not see functions
holding it in a large file; `tests/test_big_agent.py` checks that both ways give the same app on the corpus.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

from scripts.model.statements import NotCut, top_level_statements  # noqa: F401 (re-exported)

LARGE_SOURCE = 200_000  # bytes; below this the whole file is transformed (and no agent known to us is larger)
# Words some transform of the code step acts on (imports, artifacts, model config, user credentials, the
# agent's registration, notebook cells, paths and files, event loops); a statement holding one is not hidden.
KEEP_WORDS = ("import", "artifacts", "ModelConfig", "Path", "__file__", "open(", "/model", "Credentials",
              "set_model", "predict", "mlflow", "asyncio", "run_until_complete", "global", "dbutils", "spark",
              "display", "MAGIC", "COMMAND")
MARKER = "# agent-migrate: hidden statements {number}\n"
_WORDS = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass
class EntrySegments:
    text: str  # what the transforms parse: the source with each hidden run as its marker and blank lines
    hidden: list[str] = field(default_factory=list)  # the original text of each run, by marker number
    names: set[str] = field(default_factory=set)  # every word of the hidden text (all taken)
    bindings: set[str] = field(default_factory=set)  # names the hidden statements bind at module level
    markers: list[tuple[int, int]] = field(default_factory=list)  # (marker's line in text, lines it stands for)

    def restore(self, code: str) -> str | None:
        """`code` with each hidden run put back; None when a marker is not there exactly once."""
        for number, text in enumerate(self.hidden):
            marker = MARKER.format(number=number)
            if code.count(marker) != 1:
                return None
            code = code.replace(marker, text, 1)
        return code

    def original_line(self, line: int) -> int:
        """The line of the original file that line `line` of `text` is."""
        return line + sum(count - 1 for marker_line, count in self.markers if marker_line < line)


def _hideable(tree: ast.Module, text: str, keep: set[str]) -> bool:
    if len(tree.body) != 1 or not isinstance(tree.body[0], (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return False
    return not any(word in text for word in (*KEEP_WORDS, *keep))


def segment(source: str, keep: set[str]) -> EntrySegments | None:
    """The large source with its untouched functions and classes hidden; None for a small source or one
    that does not cut cleanly (`keep`: more words a hidden statement may not hold, e.g. the class name)."""
    if len(source) < LARGE_SOURCE or not source.endswith("\n"):
        return None
    try:
        return _segmented(source, keep)
    except NotCut:
        return None


def _segmented(source: str, keep: set[str]) -> EntrySegments:
    segments = EntrySegments("")
    parts: list[str] = []
    run: list[str] = []
    line = 1  # where the next part starts in the text the transforms see

    def hide() -> None:
        nonlocal line
        segments.hidden.append("".join(run))
        segments.markers.append((line, segments.hidden[-1].count("\n")))
        parts.append(MARKER.format(number=len(segments.hidden) - 1))
        line += 1
        run.clear()

    for text, tree in top_level_statements(source):
        if _hideable(tree, text, keep):
            run.append(text)
            segments.bindings.add(tree.body[0].name)
            continue
        if run:
            hide()
        parts.append(text)
        line += text.count("\n")
    if run:
        hide()
    segments.text = "".join(parts)
    segments.names = set(_WORDS.findall("".join(segments.hidden)))
    return segments
