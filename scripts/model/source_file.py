"""One Python file of the model, parsed with `ast` (never imported) or kept with the reason it could not be.

Paths are relative to the downloaded model's root (`agent.py`, `code/pkg/tools.py`) so later steps can map
them into the app.
"""

from __future__ import annotations

import ast
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from scripts.model.imports import import_aliases, package_of

SNIPPET_LENGTH = 120


@dataclass
class SourceFile:
    """One Python file of the model, parsed (or the reason it could not be).

    `module` is the name the file is imported by (`pkg.tools` for `code/pkg/tools.py`: MLflow puts `code/`
    on sys.path), None for the entry file, which MLflow runs as a script.
    """

    path: str
    text: str
    sha256: str
    module: str | None = None
    is_package: bool = False
    tree: ast.Module | None = None
    syntax_error: SyntaxError | None = None
    aliases: dict[str, str] = field(default_factory=dict)
    nodes: list[ast.AST] = field(default_factory=list)  # every node of `tree`, in ast.walk order

    def line(self, number: int) -> str:
        lines = self.text.splitlines()
        text = lines[number - 1].strip() if 0 < number <= len(lines) else ""
        return text if len(text) <= SNIPPET_LENGTH else text[: SNIPPET_LENGTH - 1] + "…"

    def site(self, node: ast.AST, **facts) -> dict:
        return {"path": self.path, "line": node.lineno, **facts, "text": self.line(node.lineno)}

    def facts(self) -> dict:
        error = None
        if self.syntax_error is not None:
            error = {"line": self.syntax_error.lineno or 1, "message": self.syntax_error.msg or str(self.syntax_error)}
        return {"path": self.path, "module": self.module, "sha256": self.sha256, "syntax_error": error}


def parse_source(root: Path, relative: str, module: str | None = None) -> SourceFile:
    """Parse `root/relative`; a file that is not valid Python keeps its error instead of raising."""
    data = (root / relative).read_bytes()
    source = SourceFile(path=relative, text=data.decode("utf-8", errors="replace"),
                        sha256=hashlib.sha256(data).hexdigest(), module=module,
                        is_package=relative.endswith("/__init__.py"))
    try:
        # Parsing the bytes lets Python honour a PEP 263 coding line.
        source.tree = ast.parse(data, filename=relative)
    except SyntaxError as error:
        source.syntax_error = error
        return source
    except ValueError as error:  # null bytes: not Python source at all
        source.syntax_error = SyntaxError(str(error), (relative, 1, 0, ""))
        return source
    package = package_of(module, source.is_package) if module else None
    # Every scan reads this one flattened walk: a 2 MB file is walked once, not once per scan.
    source.nodes = list(ast.walk(source.tree))
    source.aliases = import_aliases(source.nodes, package)
    return source
