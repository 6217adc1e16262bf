"""The agent class: found through `set_model(...)` or as the leaf class deriving from an MLflow interface.

This is the one locator: analyze records what it finds, and the code step takes the class from analyze's
report instead of searching again.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from scripts.model.names import dotted_name, module_level_statements, qualified, yields
from scripts.model.source_file import SNIPPET_LENGTH, SourceFile

# The MLflow interfaces an agent class can derive from, most specific first.
KNOWN_BASES = ("ResponsesAgent", "ChatAgent", "ChatModel", "PythonModel")
AGENT_METHODS = ("predict", "predict_stream")
SETUP_METHODS = ("__init__", "load_context")
# How far base chains and re-exports are followed before giving up (a cycle, or absurd code).
MAX_DEPTH = 10


@dataclass(frozen=True)
class ClassSite:
    source: SourceFile
    node: ast.ClassDef


def classes_in(source: SourceFile) -> dict[str, ClassSite]:
    if source.tree is None:
        return {}
    return {node.name: ClassSite(source, node) for node in module_level_statements(source.tree)
            if isinstance(node, ast.ClassDef)}


class ClassIndex:
    """Classes of the entry file and of code/ modules, found by the names a file uses for them."""

    def __init__(self, entry: SourceFile | None, code_sources: list[SourceFile]):
        self.entry = entry
        self.modules = {source.module: source for source in code_sources if source.module}

    def lookup(self, source: SourceFile, dotted: str, depth: int = 0) -> ClassSite | None:
        """The class `dotted` names inside `source`: defined there, or imported (and re-exported) from code/."""
        local = classes_in(source)
        if dotted in local:
            return local[dotted]
        target = qualified(source, dotted) or dotted
        module, _, name = target.rpartition(".")
        return self.lookup_in_module(module, name, depth)

    def lookup_in_module(self, module: str, name: str, depth: int = 0) -> ClassSite | None:
        source = self.modules.get(module)
        if source is None or depth >= MAX_DEPTH:
            return None
        found = classes_in(source).get(name)
        if found is not None:
            return found
        if name in source.aliases:  # re-exported: `from .base import Base` in pkg/__init__.py
            return self.lookup(source, name, depth + 1)
        return None


def known_base(source: SourceFile, base: ast.expr) -> str | None:
    name = dotted_name(base)
    target = qualified(source, name) or ""
    last = target.rsplit(".", 1)[-1]
    return last if last in KNOWN_BASES else None


def base_chain(index: ClassIndex, site: ClassSite, depth: int = 0) -> tuple[list[str], str, list[ClassSite]]:
    """The chain of base classes from `site` to an MLflow interface: names, the interface (or "other"), sites.

    With several bases, the first one that leads to an MLflow interface is followed.
    """
    fallback: tuple[list[str], str, list[ClassSite]] | None = None
    for base in site.node.bases:
        known = known_base(site.source, base)
        if known:
            return [site.node.name, known], known, [site]
        parent = index.lookup(site.source, dotted_name(base) or "") if depth < MAX_DEPTH else None
        if parent is not None and parent.node is not site.node:
            names, interface, sites = base_chain(index, parent, depth + 1)
            if interface != "other":
                return [site.node.name, *names], interface, [site, *sites]
            fallback = fallback or ([site.node.name, *names], interface, [site, *sites])
        elif fallback is None:
            fallback = ([site.node.name, dotted_name(base) or ast.unparse(base)], "other", [site])
    return fallback or ([site.node.name], "other", [site])


@dataclass(frozen=True)
class SetModelCall:
    line: int
    target: str
    class_name: str | None


def set_model_calls(entry: SourceFile) -> list[SetModelCall]:
    """Every `mlflow.models.set_model(...)` in the entry file and the class of the object it registers."""
    if entry.tree is None:
        return []
    assigned: dict[str, ast.expr] = {}
    for node in module_level_statements(entry.tree):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    assigned[target.id] = node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            assigned[node.target.id] = node.value
    calls = []
    for node in entry.nodes:
        if not (isinstance(node, ast.Call) and (dotted_name(node.func) or "").rsplit(".", 1)[-1] == "set_model"):
            continue
        argument = node.args[0] if node.args else next(
            (keyword.value for keyword in node.keywords if keyword.arg == "model"), None)
        if argument is None:
            continue
        value = assigned.get(argument.id, argument) if isinstance(argument, ast.Name) else argument
        class_name = dotted_name(value.func) if isinstance(value, ast.Call) else None
        if class_name is None and isinstance(argument, ast.Name):
            class_name = argument.id  # `set_model(MyAgent)` or a name we could not follow
        calls.append(SetModelCall(node.lineno, ast.unparse(argument), class_name))
    return calls


@dataclass
class AgentClassSearch:
    """How the agent class was found: through set_model, or as the one class deriving from an MLflow interface."""

    site: ClassSite | None
    found_by: str | None  # "set_model" | "base_class"
    set_model: list[SetModelCall]
    candidates: list[str]


def find_agent_class(index: ClassIndex) -> AgentClassSearch:
    calls = set_model_calls(index.entry)
    for call in reversed(calls):  # the last registration wins when the file runs
        if call.class_name:
            site = index.lookup(index.entry, call.class_name)
            if site is not None:
                return AgentClassSearch(site, "set_model", calls, [site.node.name])
    # No usable set_model: the classes of the entry file that reach an MLflow interface; leaves before the
    # classes they derive from, then the most specific interface.
    candidates = []
    for site in classes_in(index.entry).values():
        names, interface, _ = base_chain(index, site)
        if interface != "other":
            candidates.append((site, names, interface))
    parents = {name for _, names, _ in candidates for name in names[1:]}
    leaves = [candidate for candidate in candidates if candidate[0].node.name not in parents] or candidates
    leaves.sort(key=lambda candidate: KNOWN_BASES.index(candidate[2]))
    site = leaves[0][0] if leaves else None
    return AgentClassSearch(site, "base_class" if site else None, calls, [leaf[0].node.name for leaf in leaves])


def calls_self_method(function: ast.AST, method: str) -> bool:
    return any(isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == method
               and isinstance(node.func.value, ast.Name) and node.func.value.id == "self"
               for node in ast.walk(function))


def self_attributes(function: ast.AST) -> list[str]:
    """Names of `self.x` that `function` assigns, in order of first assignment."""
    assigned: list[tuple[int, int, str]] = []
    for node in ast.walk(function):  # breadth first, so the order comes from the positions below
        targets = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
            targets = [node.target]
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            targets = [item.optional_vars for item in node.items if item.optional_vars is not None]
        for target in targets:
            for element in (target.elts if isinstance(target, (ast.Tuple, ast.List)) else [target]):
                if (isinstance(element, ast.Attribute) and isinstance(element.value, ast.Name)
                        and element.value.id == "self"):
                    assigned.append((element.lineno, element.col_offset, element.attr))
    names: list[str] = []
    for _, _, name in sorted(assigned):
        if name not in names:
            names.append(name)
    return names


def method_in_chain(sites: list[ClassSite], name: str) -> tuple[ClassSite, ast.FunctionDef | ast.AsyncFunctionDef] | None:
    for site in sites:
        for node in site.node.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name:
                return site, node
    return None


def describe_method(sites: list[ClassSite], name: str) -> dict:
    found = method_in_chain(sites, name)
    if found is None:
        return {"present": False}
    site, node = found
    facts = {
        "present": True,
        "path": site.source.path,
        "line": node.lineno,
        "defined_in": site.node.name,
        "is_async": isinstance(node, ast.AsyncFunctionDef),
        "is_generator": yields(node),
        "parameters": [argument.arg for argument in node.args.posonlyargs + node.args.args + node.args.kwonlyargs],
    }
    if name == "predict":
        facts["calls_predict_stream"] = calls_self_method(node, "predict_stream")
    if name in SETUP_METHODS:
        facts["attributes"] = self_attributes(node)
    return facts


def class_attributes(sites: list[ClassSite]) -> list[dict]:
    """Assignments in the class bodies of the chain: created once at import, shared by every request."""
    attributes = []
    for site in sites:
        for node in site.node.body:
            if isinstance(node, ast.Assign):
                targets = [target for target in node.targets if isinstance(target, ast.Name)]
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
                targets = [node.target]
            else:
                continue
            value = node.value
            unparsed = ast.unparse(value)
            for target in targets:
                attributes.append({
                    "name": target.id,
                    "path": site.source.path,
                    "line": node.lineno,
                    "defined_in": site.node.name,
                    "value": unparsed if len(unparsed) <= SNIPPET_LENGTH else unparsed[: SNIPPET_LENGTH - 1] + "…",
                    "calls": qualified(site.source, dotted_name(value.func)) if isinstance(value, ast.Call) else None,
                })
    return attributes


def describe_agent_class(index: ClassIndex, search: AgentClassSearch) -> dict | None:
    if search.site is None:
        return None
    names, interface, sites = base_chain(index, search.site)
    return {
        "name": search.site.node.name,
        "path": search.site.source.path,
        "line": search.site.node.lineno,
        "found_by": search.found_by,
        "base": interface,
        "bases": [ast.unparse(base) for base in search.site.node.bases],
        "base_chain": names,
        "methods": {name: describe_method(sites, name) for name in AGENT_METHODS + SETUP_METHODS},
        "class_attributes": class_attributes(sites),
    }


def agent_classes_in_code(code_sources: list[SourceFile]) -> list[dict]:
    """Classes under code/ that reach an MLflow interface: where a pickled model's source may still be."""
    index = ClassIndex(None, code_sources)
    found = []
    for source in code_sources:
        for site in classes_in(source).values():
            names, interface, _ = base_chain(index, site)
            if interface != "other":
                found.append({"path": source.path, "line": site.node.lineno, "name": site.node.name, "base": interface})
    return found
