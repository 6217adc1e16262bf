"""One copied module rewritten for its place in the app: its imports of code/ modules (modules.py), its artifact
paths, its ModelConfig calls and the patterns of code written for Model Serving or a notebook.

Artifacts move from the model's `artifacts/` to `agent_server/artifacts/`, and code that reached them through
`context.artifacts["key"]` or a literal `"artifacts/..."` path gets a path relative to its own file.
A model logged with `model_config=` carries its config inside MLmodel, where MLflow hands it to
`mlflow.models.ModelConfig` while loading; the app has no such loader, so the config becomes
`agent_server/model_config.yml` and every `ModelConfig(...)` call is pointed at that file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import PurePosixPath

import libcst as cst

from scripts.transform import patterns
from scripts.transform.added_imports import add_imports
from scripts.transform.modules import (ARTIFACTS_DIR, MODEL_CONFIG_FILE, CodeTree, LocalImportRewriter, ModelFiles,
                                       dotted, package_depth)


@dataclass(frozen=True)
class ArtifactSite:
    line: int
    reference: str  # what the code said: `context.artifacts["config"]` or "artifacts/prompt.txt"
    target: str | None  # the path under agent_server/artifacts/, None when it could not be resolved


class ArtifactPathRewriter(cst.CSTTransformer):
    """`context.artifacts["key"]` and `"artifacts/x"` → `str(Path(__file__).parent / "artifacts" / "x")`."""

    METADATA_DEPENDENCIES = (cst.metadata.PositionProvider,)

    def __init__(self, artifact_keys: dict[str, str], depth: int, path_name: str):
        self.artifact_keys = artifact_keys  # MLmodel key → path under artifacts/
        self.depth = depth
        self.path_name = path_name  # how this module names pathlib.Path
        self.sites: list[ArtifactSite] = []
        self._concatenated = 0
        self._docstrings: set[int] = set()

    def path_expression(self, relative: str) -> cst.BaseExpression:
        parents = ".parent" * (self.depth + 1)
        parts = " / ".join(json.dumps(part) for part in PurePosixPath(relative).parts)
        return cst.parse_expression(f'str({self.path_name}(__file__){parents} / "{ARTIFACTS_DIR}" / {parts})')

    def _line(self, node: cst.CSTNode) -> int:
        return self.get_metadata(cst.metadata.PositionProvider, node).start.line

    def _keyed(self, original: cst.CSTNode, key_node: cst.BaseExpression, updated: cst.BaseExpression,
               shown: str) -> cst.BaseExpression:
        key = key_node.evaluated_value if isinstance(key_node, cst.SimpleString) else None
        target = self.artifact_keys.get(key) if isinstance(key, str) else None
        self.sites.append(ArtifactSite(self._line(original), shown, target))
        return self.path_expression(target) if target else updated

    def leave_Subscript(self, original_node, updated_node):
        value = updated_node.value
        if (isinstance(value, cst.Attribute) and value.attr.value == "artifacts" and isinstance(value.value, cst.Name)
                and len(updated_node.slice) == 1 and isinstance(updated_node.slice[0].slice, cst.Index)):
            key = updated_node.slice[0].slice.value
            return self._keyed(original_node, key, updated_node, cst.Module([]).code_for_node(original_node))
        return updated_node

    def leave_Call(self, original_node, updated_node):
        function = updated_node.func
        if (isinstance(function, cst.Attribute) and function.attr.value == "get"
                and isinstance(function.value, cst.Attribute) and function.value.attr.value == "artifacts"
                and isinstance(function.value.value, cst.Name) and updated_node.args):
            return self._keyed(original_node, updated_node.args[0].value, updated_node,
                               cst.Module([]).code_for_node(original_node))
        return updated_node

    def visit_ConcatenatedString(self, node):
        self._concatenated += 1

    def leave_ConcatenatedString(self, original_node, updated_node):
        self._concatenated -= 1
        return updated_node

    def visit_Expr(self, node):
        if isinstance(node.value, cst.SimpleString):
            self._docstrings.add(id(node.value))

    def leave_SimpleString(self, original_node, updated_node):
        if self._concatenated or id(original_node) in self._docstrings:
            return updated_node
        value = original_node.evaluated_value
        if not isinstance(value, str) or not value.startswith(f"{ARTIFACTS_DIR}/"):
            return updated_node
        relative = value[len(ARTIFACTS_DIR) + 1:].strip("/")
        if not relative:
            return updated_node
        self.sites.append(ArtifactSite(self._line(original_node), value, relative))
        return self.path_expression(relative)


@dataclass(frozen=True)
class ModelConfigSite:
    line: int
    reference: str  # the call as written: `ModelConfig(development_config="config.yml")`


class ModelConfigRewriter(cst.CSTTransformer):
    """`ModelConfig(development_config=...)` → `ModelConfig(development_config=<agent_server/model_config.yml>)`.

    Model Serving ignores development_config (MLflow passes the logged config instead); in the app nothing
    does, so the path the notebook used must become the file that holds the logged config.
    """

    METADATA_DEPENDENCIES = (cst.metadata.PositionProvider,)

    def __init__(self, depth: int, path_name: str):
        self.depth = depth
        self.path_name = path_name
        self.sites: list[ModelConfigSite] = []

    def leave_Call(self, original_node, updated_node):
        name = dotted(updated_node.func)
        if name is None or name.rsplit(".", 1)[-1] != "ModelConfig":
            return updated_node
        self.sites.append(ModelConfigSite(self.get_metadata(cst.metadata.PositionProvider, original_node).start.line,
                                          cst.Module([]).code_for_node(original_node)))
        parents = ".parent" * (self.depth + 1)
        path = cst.parse_expression(f'str({self.path_name}(__file__){parents} / "{MODEL_CONFIG_FILE}")')
        kept = [arg for arg in updated_node.args if not (arg.keyword and arg.keyword.value == "development_config")]
        argument = cst.Arg(keyword=cst.Name("development_config"), value=path,
                           equal=cst.AssignEqual(whitespace_before=cst.SimpleWhitespace(""),
                                                 whitespace_after=cst.SimpleWhitespace("")))
        return updated_node.with_changes(args=[*kept, argument])


def path_name_for(module: cst.Module) -> tuple[str, tuple[str, str | None]]:
    """How to spell pathlib.Path in `module`, and the import that provides it (module, name or None)."""
    bound_elsewhere = False
    for statement in module.body:
        if isinstance(statement, cst.SimpleStatementLine):
            for small in statement.body:
                if isinstance(small, cst.ImportFrom) and not isinstance(small.names, cst.ImportStar):
                    for alias in small.names:
                        name = alias.evaluated_alias or alias.evaluated_name
                        if name == "Path":
                            if dotted(small.module) == "pathlib" and alias.asname is None:
                                return "Path", ("pathlib", "Path")
                            bound_elsewhere = True
                elif isinstance(small, cst.Assign):
                    bound_elsewhere |= any(isinstance(t.target, cst.Name) and t.target.value == "Path"
                                           for t in small.targets)
        elif isinstance(statement, (cst.ClassDef, cst.FunctionDef)) and statement.name.value == "Path":
            bound_elsewhere = True
    if bound_elsewhere:
        return "pathlib.Path", ("pathlib", None)
    return "Path", ("pathlib", "Path")


@dataclass
class ModuleRewrite:
    code: str
    imports: list[tuple[str, str]]
    artifacts: list[ArtifactSite]
    model_config: list[ModelConfigSite] = field(default_factory=list)
    patterns: list = field(default_factory=list)  # PatternSite: container paths, working-directory files, notebooks


def rewrite_module(source: str, tree: CodeTree, artifact_keys: dict[str, str], app_path: str,
                   model_config: bool = False, model: ModelFiles | None = None) -> ModuleRewrite:
    """Imports and artifact paths of one copied module, rewritten for its place in the app; with `model_config`
    (the model was logged with one), its ModelConfig calls too; with `model`, the patterns of code written for
    Model Serving or a notebook (scripts/transform/patterns.py)."""
    pattern_sites = []
    if model is not None:
        source, pattern_sites = patterns.clean_source(source, app_path)
    module = cst.parse_module(source)
    importer = LocalImportRewriter(tree)
    # Each pass below walks the whole module (the position passes copy it first): on a 2 MB agent file that
    # is minutes, so a pass runs only when the text holds what it rewrites.
    if tree.top_level:
        module = module.visit(importer)
    path_name, path_import = path_name_for(module)
    artifacts = ArtifactPathRewriter(artifact_keys, package_depth(app_path), path_name)
    if ARTIFACTS_DIR in source:
        module = cst.metadata.MetadataWrapper(module).visit(artifacts)
    configs = ModelConfigRewriter(package_depth(app_path), path_name)
    if model_config and "ModelConfig" in source:
        module = cst.metadata.MetadataWrapper(module).visit(configs)
    rewrote_paths = False
    if model is not None:
        module, sites = patterns.rewrite_paths(module, source, model, package_depth(app_path), path_name)
        pattern_sites += sites
        rewrote_paths = any(site.code in patterns.PATH_REWRITES for site in sites)
    if any(site.target for site in artifacts.sites) or configs.sites or rewrote_paths:
        module = add_imports(module, [path_import])
    return ModuleRewrite(module.code, importer.rewritten, artifacts.sites, configs.sites, pattern_sites)
