"""The code step's hooks for code written for Model Serving or a notebook (issue 11, patterns 1, 2, 3 and 6).

Each pattern has its module: container_paths (`/model/...`), cwd_files (files read relative to the working
directory), notebook (magic cells, test cells, notebook globals), original_names (code_paths modules imported
by their original names). `module_rewrite.rewrite_module` calls `clean_source` and `rewrite_paths` for every module;
the step calls `add_original_names` on the files it writes and `findings` for its report.
"""

from __future__ import annotations

from pathlib import Path

import libcst as cst

from scripts.core.findings import Finding
from scripts.model.requirements import read_requirements
from scripts.transform import notebook, original_names
from scripts.transform.container_paths import ContainerPathRewriter, PatternSite
from scripts.transform.cwd_files import WorkingDirectoryFileRewriter
from scripts.transform.modules import CodeTree, ModelFiles

PATH_REWRITES = {"COD060", "COD062"}  # sites whose rewrite needs pathlib.Path in the module
READ_WORDS = ("open(", "Path(", "read_")


def clean_source(source: str, app_path: str) -> tuple[str, list[PatternSite]]:
    """Magic cells and module-level test calls dropped (before the module is parsed for the other rewrites)."""
    return notebook.clean_module(source, app_path)


def rewrite_paths(module: cst.Module, source: str, model: ModelFiles, depth: int,
                  path_name: str) -> tuple[cst.Module, list[PatternSite]]:
    """`/model/...` paths and working-directory files mapped to the app's copies; notebook globals flagged."""
    sites: list[PatternSite] = []
    if "/model" in source:
        container = ContainerPathRewriter(model.resolve, depth, path_name)
        module = cst.metadata.MetadataWrapper(module).visit(container)
        sites += container.sites
    if any(word in source for word in READ_WORDS):
        files = WorkingDirectoryFileRewriter(model.resolve, depth, path_name)
        module = cst.metadata.MetadataWrapper(module).visit(files)
        sites += files.sites
    return module, sites + notebook.notebook_global_sites(module.code)


def add_original_names(files: dict[str, bytes], sources: dict[str, str], tree: CodeTree, entry_path: str,
                       model_root: Path) -> list[PatternSite]:
    """agent_server/original_names.py, imported first by the entry module, when the model has code_paths modules."""
    modules = {old: new for old, new in tree.top_level.items()}
    if not modules:
        return []
    files[original_names.PATH] = original_names.module_source(modules).encode("utf-8")
    sources[original_names.PATH] = "code/"
    files[entry_path] = original_names.import_first(files[entry_path].decode("utf-8")).encode("utf-8")
    return original_names.name_sites(modules, read_requirements(model_root / "requirements.txt"))


def findings(app_name: str, rewrites: list, step_sites: list[PatternSite]) -> list[Finding]:
    """The report's findings for every pattern site: rewritten (info), to fix (warning, error)."""
    found = []
    for path, rewrite in rewrites:
        for site in rewrite.patterns:
            where = f"{app_name}/{path}" + (f":{site.line}" if site.line else "")
            found.append(Finding(site.code, site.severity, where, site.message, site.fix))
    for site in step_sites:
        found.append(Finding(site.code, site.severity, f"{app_name}/{original_names.PATH}", site.message, site.fix))
    return found
