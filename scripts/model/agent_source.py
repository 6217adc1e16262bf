"""What the model's Python code says, read once from the entry file and every module under code/.

Everything here works on `ast` trees, so analysing a model never imports its code (which may need packages,
credentials or a workspace we do not have). Nothing here judges: the analyze step turns these facts into
findings, and the later steps read analyze's report.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from scripts.model import scans
from scripts.model.agent_class import (AgentClassSearch, ClassIndex, describe_agent_class, find_agent_class)
from scripts.model.agent_factory import factory_agent, factory_facts, find_factory
from scripts.model.blocking import ASYNC_EQUIVALENT, kind_of
from scripts.model.parsed_modules import parsed_module
from scripts.model.files import CODE_DIR, code_files
from scripts.model.imports import local_imports, module_name
from scripts.model.names import dotted_name
from scripts.model.source_file import SourceFile, parse_source


class _BlockingCallFinder(ast.NodeVisitor):
    """Calls that block the thread they run on, with the function they sit in and whether it is async.

    Awaited calls and the context managers of `async with` are async already and are left out. Which calls
    block is decided by `scripts.model.blocking.kind_of`, the same rule the code step and the code check
    apply, so the analysis lists what the async mode will ask to convert.
    """

    def __init__(self, source: SourceFile):
        self.source = source
        self.module = parsed_module(source.tree, source.module or "__main__", source.path,
                                    is_package=source.is_package, nodes=source.nodes)
        self.functions: list[tuple[str, bool]] = []
        self.asynchronous: set[int] = set()
        self.sites: list[dict] = []

    def _function(self, node, is_async: bool) -> None:
        parent = self.functions[-1][0] + "." if self.functions else ""
        self.functions.append((parent + node.name, is_async))
        self.generic_visit(node)
        self.functions.pop()

    def visit_FunctionDef(self, node):
        self._function(node, False)

    def visit_AsyncFunctionDef(self, node):
        self._function(node, True)

    def visit_ClassDef(self, node):
        self._function(node, False)  # methods read as `Class.method`; the class body itself is sync

    def visit_Await(self, node):
        self.asynchronous.add(id(node.value))
        self.generic_visit(node)

    def visit_AsyncWith(self, node):
        self.asynchronous.update(id(item.context_expr) for item in node.items)
        self.generic_visit(node)

    def visit_AsyncFor(self, node):
        self.asynchronous.add(id(node.iter))
        self.generic_visit(node)

    def visit_Call(self, node):
        kind = None if id(node) in self.asynchronous else kind_of(node, self.module)
        if kind:
            function = self.functions[-1][0] if self.functions else "<module>"
            # A sync helper nested in an async function runs on the event loop when that function calls it.
            in_async = any(is_async for _, is_async in self.functions)
            self.sites.append(self.source.site(node, call=dotted_name(node.func) or ast.unparse(node.func),
                                               kind=kind, function=function, in_async=in_async,
                                               async_equivalent=ASYNC_EQUIVALENT[kind]))
        self.generic_visit(node)


def blocking_calls(source: SourceFile) -> list[dict]:
    if source.tree is None:
        return []
    finder = _BlockingCallFinder(source)
    finder.visit(source.tree)
    return sorted(finder.sites, key=lambda site: site["line"])


# ---------------------------------------------------------------------------------------------------- all together


@dataclass
class AgentSource:
    """What the model's Python code says, read from the entry file and every module under code/."""

    entry: SourceFile | None
    code_sources: list[SourceFile]
    other_code_files: list[str]
    search: AgentClassSearch | None
    agent_class: dict | None

    @property
    def sources(self) -> list[SourceFile]:
        return ([self.entry] if self.entry else []) + self.code_sources

    @property
    def code_modules(self) -> dict[str, str]:
        return {source.module: source.path for source in self.code_sources if source.module}

    def syntax_errors(self) -> list[SourceFile]:
        return [source for source in self.sources if source.syntax_error is not None]

    def frameworks(self) -> list[dict]:
        local_top = {module.split(".")[0] for module in self.code_modules}
        return scans.detect_frameworks(self.sources, local_top)

    def modules(self) -> list[dict]:
        return [{"path": source.path, "module": source.module, "is_package": source.is_package,
                 "imports": local_imports(source, self.code_modules)}
                for source in self.code_sources]

    def local_imports(self) -> list[dict]:
        return [edge for source in self.sources for edge in local_imports(source, self.code_modules)]

    def state_signals(self) -> list[dict]:
        return [site for source in self.sources for site in scans.state_signals(source)]

    def artifact_reads(self) -> list[dict]:
        return [site for source in self.sources for site in scans.artifact_access(source)]

    def user_credentials(self) -> list[dict]:
        return [site for source in self.sources for site in scans.user_credential_sites(source)]

    def blocking_calls(self) -> list[dict]:
        return [site for source in self.sources for site in blocking_calls(source)]



def read_agent_source(root: Path, entry_path: str | None) -> AgentSource:
    """Parse the entry file (when there is one) and every Python file under `root/code/`."""
    python_paths, other_paths = code_files(root)
    code_sources = [parse_source(root, path, module_name(path.removeprefix(f"{CODE_DIR}/")))
                    for path in python_paths]
    entry = parse_source(root, entry_path) if entry_path and (root / entry_path).is_file() else None
    if entry is None or entry.tree is None:
        return AgentSource(entry, code_sources, other_paths, None, None)
    index = ClassIndex(entry, code_sources)
    search = find_agent_class(index)
    found = find_factory(index, search.set_model)
    if found is None:
        return AgentSource(entry, code_sources, other_paths, search, describe_agent_class(index, search))
    # set_model registers what a factory returns: the class it returns (or the one found by its base) is
    # described, and the factory call is kept with it, so the code step builds the agent the same way.
    factory, returned = found
    if returned is not None:
        search = AgentClassSearch(returned, "set_model", search.set_model, [returned.node.name])
    if search.site is None:
        return AgentSource(entry, code_sources, other_paths, search, factory_agent(factory, entry))
    agent = describe_agent_class(index, search)
    agent["factory"] = factory_facts(factory)
    return AgentSource(entry, code_sources, other_paths, search, agent)
