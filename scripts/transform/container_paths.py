"""Model Serving's container paths (`/model/artifacts/...`, `/model/code/...`) rewritten to the app's files.

Model Serving unpacks the model at `/model`, so agents written for it read `Path("/model/artifacts") /
"uc_config.yaml"` or `os.path.join("/model", "code", "pkg", "prompts")`. The app has no `/model`: its
artifacts are `agent_server/artifacts/` and the code_paths modules sit in `agent_server/`. A path built only
from literals is replaced whole by the same file relative to the module (`Path(__file__).parent / ...`); a
literal head followed by computed parts (`os.path.join("/model/artifacts", name)`) has its head replaced. What
cannot be mapped (a computed part right after `/model`, a file the model does not have, an f-string) is left
as written and reported as an error site, with its line.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath

import libcst as cst

from scripts.transform.modules import ARTIFACTS_DIR, dotted

CONTAINER_ROOT = "/model"
PATH_CALLS = {"Path", "pathlib.Path", "PurePath", "pathlib.PurePath", "PosixPath", "pathlib.PosixPath"}
JOIN_CALLS = {"os.path.join", "path.join", "posixpath.join"}


@dataclass(frozen=True)
class PatternSite:
    """One place a pattern transform rewrote or could not rewrite, as the code step reports it."""

    code: str
    severity: str
    line: int | None  # in the app file; None when the site is gone from it (a dropped cell)
    message: str
    fix: str


def app_target(model_path: str, tree_files: dict[str, str], top_level: dict[str, str],
               exists: Callable[[str], bool]) -> str | None:
    """Where a file of the model (`artifacts/x.yaml`, `code/pkg/p.md`, relative to the model's root) is in the
    app, relative to agent_server/ (`artifacts/x.yaml`, `pkg/p.md`); None when the model has no such file."""
    parts = PurePosixPath(posixpath.normpath(model_path)).parts
    if not parts or not exists("/".join(parts)):
        return None
    if parts[0] == ARTIFACTS_DIR:
        return "/".join(parts)
    if parts[0] != "code":
        return None
    if len(parts) == 1:
        return "" if all(old == new for old, new in top_level.items()) else None
    mapped = tree_files.get("/".join(parts))
    if mapped:
        return mapped.split("/", 1)[1]
    top = parts[1][:-3] if parts[1].endswith(".py") else parts[1]
    return "/".join([top_level[top], *parts[2:]]) if top in top_level else None


def module_relative(target: str, depth: int, path_name: str, as_text: bool) -> cst.BaseExpression:
    """`str(Path(__file__).parent / "artifacts" / "x.yaml")` for agent_server/<target>, seen from a module
    `depth` packages below agent_server/."""
    parents = ".parent" * (depth + 1)
    parts = "".join(f" / {json.dumps(part)}" for part in PurePosixPath(target).parts)
    expression = f"{path_name}(__file__){parents}{parts}"
    return cst.parse_expression(f"str({expression})" if as_text else expression)


def literal_text(node: cst.BaseExpression) -> str | None:
    if isinstance(node, cst.SimpleString):
        value = node.evaluated_value
        return value if isinstance(value, str) else None
    return None


def literal_path(node: cst.BaseExpression) -> tuple[str, bool] | None:
    """(the path, is a Path object) for a path written only with literals, else None."""
    text = literal_text(node)
    if text is not None:
        return text, False
    if isinstance(node, cst.Call) and node.args and all(arg.keyword is None and arg.star == "" for arg in node.args):
        name = dotted(node.func) or ""
        parts = [literal_text(arg.value) for arg in node.args]
        if (name in PATH_CALLS or name in JOIN_CALLS) and all(part is not None for part in parts):
            return posixpath.join(*parts), name in PATH_CALLS
    if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.Divide):
        left, right = literal_path(node.left), literal_text(node.right)
        if left and left[1] and right is not None:
            return posixpath.join(left[0], right), True
    return None


def in_container(path: str) -> bool:
    return path == CONTAINER_ROOT or path.startswith(CONTAINER_ROOT + "/")


class ModelFileRewriter(cst.CSTTransformer):
    """A rewriter of one module's paths to the model's files: where it finds a file, what it rewrote or could not."""

    METADATA_DEPENDENCIES = (cst.metadata.PositionProvider,)

    def __init__(self, locate: Callable[[str], str | None], depth: int, path_name: str):
        self.locate = locate  # model-relative path → agent_server-relative path, or None
        self.depth = depth  # how deep the module is under agent_server/ (for `module_relative`)
        self.path_name = path_name  # the name `Path` is imported as in the module
        self.sites: list[PatternSite] = []

    def _line(self, node: cst.CSTNode) -> int:
        return self.get_metadata(cst.metadata.PositionProvider, node).start.line


class ContainerPathRewriter(ModelFileRewriter):
    """Every `/model/...` path of one module, rewritten to the app's file or recorded as a site to fix."""

    def __init__(self, locate: Callable[[str], str | None], depth: int, path_name: str):
        super().__init__(locate, depth, path_name)
        self._replacements: dict[int, cst.BaseExpression] = {}

    def _claim(self, node: cst.CSTNode, path: str, as_path: bool, shown: str) -> bool:
        """Map `path` (under /model) for `node`; False when it cannot be mapped (recorded as an error site)."""
        relative = path[len(CONTAINER_ROOT):].strip("/")
        target = self.locate(relative) if relative else None
        if target is None:
            self.sites.append(PatternSite(
                "COD061", "error", self._line(node),
                f"{shown} is a path in Model Serving's container (/model), and the app has no such file",
                "point it at the app's copy: artifacts are in agent_server/artifacts/ and code_paths modules in "
                "agent_server/ (`Path(__file__).parent / \"artifacts\" / NAME`); a file the model never had must be "
                "added to agent_server/"))
            return False
        self._replacements[id(node)] = module_relative(target, self.depth, self.path_name, not as_path)
        self.sites.append(PatternSite(
            "COD060", "info", self._line(node),
            f"{shown} (Model Serving's container path) now points at agent_server/{target}".rstrip("/"),
            "nothing to do"))
        return True

    def _visit_expression(self, node) -> bool:
        found = literal_path(node)
        if found and in_container(found[0]):
            self._claim(node, found[0], found[1], repr(found[0]))
            return False
        return True

    def visit_SimpleString(self, node):
        return self._visit_expression(node)

    def visit_BinaryOperation(self, node):
        return self._visit_expression(node)

    def visit_Call(self, node):
        if not self._visit_expression(node):
            return False
        name = dotted(node.func) or ""
        if name not in PATH_CALLS and name not in JOIN_CALLS:
            return True
        head = []  # the literal arguments a join starts with: `os.path.join("/model", "artifacts", name)`
        for arg in node.args:
            text = literal_text(arg.value) if arg.keyword is None and arg.star == "" else None
            if text is None:
                break
            head.append(text)
        if len(head) > 1 and in_container(posixpath.join(*head)):
            joined = posixpath.join(*head)
            if self._claim(node.args[0], joined, False, repr(joined)):
                self._replacements[id(node)] = len(head)  # how many arguments the first one replaces
            return False
        return True

    def visit_FormattedString(self, node):
        first = node.parts[0] if node.parts else None
        if isinstance(first, cst.FormattedStringText) and in_container(first.value.split("{")[0].rstrip("/") or "x"):
            self.sites.append(PatternSite(
                "COD061", "error", self._line(node),
                f"an f-string builds a path in Model Serving's container ({first.value!r}...), which the app does not have",
                "build it from `Path(__file__).parent / \"artifacts\"` (the app's artifacts) instead of /model"))
        return True

    def _replace(self, original, updated):
        replacement = self._replacements.get(id(original))
        if replacement is None:
            return updated
        if isinstance(replacement, int):  # a join whose literal head collapses into its first argument
            first = self._replacements[id(original.args[0])]
            arguments = [updated.args[0].with_changes(value=first), *updated.args[replacement:]]
            return updated.with_changes(args=arguments)
        return replacement

    leave_SimpleString = _replace
    leave_BinaryOperation = _replace
    leave_Call = _replace
