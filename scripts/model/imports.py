"""Imports of the model's files: what each name refers to, and which code/ module an import loads.

MLflow puts `code/` itself on sys.path when it loads a model with code_paths, so `import pkg.tools` loads
`code/pkg/tools.py` and the top-level names of code/ shadow installed packages. Relative imports are
resolved the way Python does (`importlib.util.resolve_name`), from the file's own package.
"""

from __future__ import annotations

import ast
import importlib.util
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scripts.model.source_file import SourceFile


def resolve_relative(written: str, level: int, package: str | None) -> str | None:
    """The absolute module of `from <level dots><written> import ...` in `package`; None when Python would fail.

    `package` is the importing module's `__package__`: `pkg` for `pkg/agent.py` and for `pkg/__init__.py`.
    """
    if level == 0:
        return written
    try:
        return importlib.util.resolve_name("." * level + written, package)
    except (ImportError, ValueError):  # no package, or beyond the top-level package
        return None


def package_of(module: str, is_package: bool) -> str:
    """A module's `__package__`: itself for a package's `__init__`, its parent otherwise."""
    return module if is_package else module.rpartition(".")[0]


def is_stdlib(module: str) -> bool:
    return module.split(".")[0] in sys.stdlib_module_names


def absolute_module(source: SourceFile, module: str, level: int) -> str | None:
    """The absolute name of `from <level dots><module> import ...` in `source`; None if it has no package.

    The entry file runs as a script (`source.module` is None): a relative import there fails at load time.
    """
    package = package_of(source.module, source.is_package) if source.module else None
    return resolve_relative(module, level, package or None)


def import_aliases(nodes: Iterable[ast.AST], package: str | None) -> dict[str, str]:
    """Local name → what it was imported as (`sleep` → `time.sleep`, `RA` → `mlflow.pyfunc.ResponsesAgent`).

    Relative imports are made absolute from `package`, the file's `__package__` (`from .base import B` in
    `pkg/agent.py` → `pkg.base.B`); one that cannot be (in the entry file, which has none) keeps its dots.
    """
    aliases: dict[str, str] = {}
    for node in nodes:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    aliases[alias.asname] = alias.name
                else:
                    top = alias.name.split(".")[0]
                    aliases[top] = top
        elif isinstance(node, ast.ImportFrom):
            module = resolve_relative(node.module or "", node.level, package or None)
            if module is None:
                module = "." * node.level + (node.module or "")
            for alias in node.names:
                joined = f"{module}.{alias.name}" if module and not module.endswith(".") else module + alias.name
                aliases[alias.asname or alias.name] = joined
    return aliases


def module_name(relative_to_code: str) -> str:
    """`pkg/helpers/tools.py` → `pkg.helpers.tools`; `pkg/__init__.py` → `pkg`."""
    parts = relative_to_code.removesuffix(".py").split("/")
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def resolve_local_module(module: str, code_modules: dict[str, str]) -> str | None:
    """The code/ file that an absolute import of `module` loads (its longest local prefix), if any.

    MLflow puts `code/` itself on sys.path when it loads a model with code_paths, so `import pkg.tools`
    loads `code/pkg/tools.py` and the top-level names of code/ shadow installed packages.
    """
    parts = module.split(".")
    while parts:
        name = ".".join(parts)
        if name in code_modules:
            return code_modules[name]
        parts.pop()
    return None



def local_imports(source: SourceFile, code_modules: dict[str, str]) -> list[dict]:
    """The imports of `source` that load a code/ module, with the file(s) each one loads."""
    if source.tree is None:
        return []
    edges = []
    for node in source.nodes:
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = resolve_local_module(alias.name, code_modules)
                if target:
                    edges.append({"path": source.path, "line": node.lineno, "module": alias.name, "level": 0,
                                  "resolved": [target]})
        elif isinstance(node, ast.ImportFrom):
            module = absolute_module(source, node.module or "", node.level)
            written = "." * node.level + (node.module or "")
            if module is None:
                if node.level:  # a relative import with no package to be relative to: it will fail
                    edges.append({"path": source.path, "line": node.lineno, "module": written,
                                  "level": node.level, "resolved": []})
                continue
            resolved = []
            # `from pkg import tools` loads pkg/__init__.py and, when it is a submodule, pkg/tools.py.
            for candidate in [module, *(f"{module}.{alias.name}" for alias in node.names)]:
                if candidate in code_modules and code_modules[candidate] not in resolved:
                    resolved.append(code_modules[candidate])
            if not resolved:
                target = resolve_local_module(module, code_modules)
                resolved = [target] if target else []
            if resolved or node.level:
                edges.append({"path": source.path, "line": node.lineno, "module": written, "level": node.level,
                              "resolved": resolved})
    return sorted(edges, key=lambda edge: edge["line"])



def import_sites(source: SourceFile) -> list[dict]:
    """Every import of a file: the module as written (relative ones keep their dots), line and names."""
    if source.tree is None:
        return []
    sites = []
    for node in source.nodes:
        if isinstance(node, ast.Import):
            for alias in node.names:
                sites.append({"module": alias.name, "line": node.lineno, "names": [], "level": 0})
        elif isinstance(node, ast.ImportFrom):
            sites.append({"module": node.module or "", "line": node.lineno, "level": node.level,
                          "names": [alias.name for alias in node.names]})
    return sorted(sites, key=lambda site: site["line"])
