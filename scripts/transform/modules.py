"""Where the model's files land in the app, and the import rewrites that keep them working there.

MLflow puts `code/` itself on `sys.path` when it loads a model, so `code/helpers.py` is imported as
`helpers` and `code/pkg/tools.py` as `pkg.tools`. In the app they become modules of the `agent_server`
package (`agent_server.helpers`, `agent_server.pkg.tools`), so imports between them are rewritten to that
absolute form; relative imports inside a copied package keep working as they are. The artifact paths and
ModelConfig calls of each module are rewritten by `module_rewrite.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import libcst as cst

APP_PACKAGE = "agent_server"
ENTRY_MODULE = "agent"
ARTIFACTS_DIR = "artifacts"
MODEL_CONFIG_FILE = "model_config.yml"
# Names in agent_server/ that the scaffold and this step own; a code/ module with one of them is renamed.
RESERVED_NAMES = frozenset({"agent", "start_server", "sync_bridge", "chat_agent_adapter", "__init__", ARTIFACTS_DIR,
                            "__pycache__", MODEL_CONFIG_FILE, "original_names"})


def dotted(node: cst.BaseExpression | None) -> str | None:
    """`a.b.c` for a Name/Attribute chain, else None."""
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        head = dotted(node.value)
        return f"{head}.{node.attr.value}" if head else None
    return None


@dataclass
class CodeTree:
    """The model's `code/` folder as it lands in `agent_server/`: top-level names, renames, files."""

    top_level: dict[str, str] = field(default_factory=dict)  # name in code/ → name in agent_server/
    files: dict[str, str] = field(default_factory=dict)  # original path (code/...) → app path (agent_server/...)

    @property
    def renamed(self) -> dict[str, str]:
        return {old: new for old, new in self.top_level.items() if old != new}

    def app_module(self, module: str) -> str | None:
        """The app's module for an absolute import of `module`, when it names a copied module."""
        parts = module.split(".")
        if parts[0] == "code" and len(parts) > 1 and parts[1] in self.top_level:
            parts = parts[1:]  # `from code.helpers import x`: the folder name was never importable in MLflow
        if parts[0] not in self.top_level:
            return None
        return ".".join([APP_PACKAGE, self.top_level[parts[0]], *parts[1:]])


def plan_code_tree(code_dir: Path) -> CodeTree:
    tree = CodeTree()
    if not code_dir.is_dir():
        return tree
    taken = set(RESERVED_NAMES)
    for entry in sorted(code_dir.iterdir()):
        if entry.name == "__pycache__":
            continue
        name = entry.stem if entry.is_file() and entry.suffix == ".py" else entry.name
        new = name
        while new in taken:
            new = f"{new}_module"
        taken.add(new)
        if entry.is_file() and entry.suffix == ".py":
            tree.top_level[name] = new
            tree.files[f"code/{entry.name}"] = f"{APP_PACKAGE}/{new}.py"
        elif entry.is_dir():
            tree.top_level[name] = new
            for path in sorted(entry.rglob("*")):
                if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                    inner = path.relative_to(entry).as_posix()
                    tree.files[f"code/{entry.name}/{inner}"] = f"{APP_PACKAGE}/{new}/{inner}"
        else:
            tree.files[f"code/{entry.name}"] = f"{APP_PACKAGE}/{new}"
    return tree


def package_depth(app_path: str) -> int:
    """How many package levels a module sits below `agent_server/` (0 for agent_server/x.py)."""
    return len(PurePosixPath(app_path).parts) - 2


class LocalImportRewriter(cst.CSTTransformer):
    """`from helpers import x` → `from agent_server.helpers import x`, `import pkg.tools` → both names bound."""

    def __init__(self, tree: CodeTree):
        self.tree = tree
        self.rewritten: list[tuple[str, str]] = []

    def leave_ImportFrom(self, original_node: cst.ImportFrom, updated_node: cst.ImportFrom) -> cst.ImportFrom:
        if updated_node.relative or updated_node.module is None:
            return updated_node
        module = dotted(updated_node.module)
        target = self.tree.app_module(module) if module else None
        if target is None:
            return updated_node
        self.rewritten.append((module, target))
        return updated_node.with_changes(module=cst.parse_expression(target))

    def leave_SimpleStatementLine(self, original_node, updated_node):
        if not any(isinstance(statement, cst.Import) for statement in updated_node.body):
            return updated_node
        lines: list[cst.SimpleStatementLine] = []
        kept: list[cst.BaseSmallStatement] = []
        for statement in updated_node.body:
            if not isinstance(statement, cst.Import):
                kept.append(statement)
                continue
            outside = []
            for alias in statement.names:
                module = dotted(alias.name)
                target = self.tree.app_module(module) if module else None
                if target is None:
                    outside.append(alias.with_changes(comma=cst.MaybeSentinel.DEFAULT))
                    continue
                self.rewritten.append((module, target))
                lines.extend(self.import_lines(module, target, alias))
            if outside:
                kept.append(statement.with_changes(names=outside))
        if kept:
            last = kept[-1].with_changes(semicolon=cst.MaybeSentinel.DEFAULT)
            lines.insert(0, updated_node.with_changes(body=[*kept[:-1], last]))
        lines[0] = lines[0].with_changes(leading_lines=updated_node.leading_lines,
                                         trailing_whitespace=updated_node.trailing_whitespace)
        return cst.FlattenSentinel(lines)

    @staticmethod
    def import_lines(module: str, target: str, alias: cst.ImportAlias) -> list[cst.SimpleStatementLine]:
        if alias.asname is not None:
            bound = cst.ensure_type(alias.asname.name, cst.Name).value
            return [cst.parse_statement(f"import {target} as {bound}")]
        head = module.split(".")[0]
        if "." not in module:
            return [cst.parse_statement(f"import {target} as {head}")]
        # `import pkg.tools` binds `pkg` and loads pkg.tools: import the submodule, then bind the package.
        app_head = target.split(".")[1]
        suffix = f" as {head}" if app_head != head else ""
        return [cst.parse_statement(f"import {target}"),
                cst.parse_statement(f"from {APP_PACKAGE} import {app_head}{suffix}")]


@dataclass(frozen=True)
class ModelFiles:
    """The downloaded model's files, so paths its code reads can be mapped to the app's copies."""

    root: Path
    tree: CodeTree

    def resolve(self, model_path: str) -> str | None:
        """`artifacts/x.yaml` or `code/pkg/p.md` → where the app has it under agent_server/, or None."""
        from scripts.transform.container_paths import app_target

        root = self.root.resolve()

        def exists(relative: str) -> bool:
            path = (root / relative).resolve()
            return path.is_relative_to(root) and path.exists()

        return app_target(model_path, self.tree.files, self.tree.top_level, exists)

