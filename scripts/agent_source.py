"""Read an agent's Python source without running it: the agent class, its imports, state, artifacts, blocking calls.

Everything here works on `ast` trees, so analysing a model never imports its code (which may need packages,
credentials or a workspace we do not have). Paths are relative to the downloaded model's root
(`agent.py`, `code/pkg/tools.py`) so later steps can map them into the app. Nothing here judges: the
analyze step turns these facts into findings.
"""

from __future__ import annotations

import ast
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from scripts.transform.blocking import ASYNC_EQUIVALENT, kind_of, parsed_module

CODE_DIR = "code"
# The MLflow interfaces an agent class can derive from, most specific first.
KNOWN_BASES = ("ResponsesAgent", "ChatAgent", "ChatModel", "PythonModel")
AGENT_METHODS = ("predict", "predict_stream")
SETUP_METHODS = ("__init__", "load_context")
SNIPPET_LENGTH = 120
# How far base chains and re-exports are followed before giving up (a cycle, or absurd code).
MAX_DEPTH = 10

# Top-level import name → framework. `databricks_langchain` is LangChain's Databricks integration, so it counts
# as LangChain; `agents` is the import name of the OpenAI Agents SDK (unless code/ has its own `agents`).
FRAMEWORK_MODULES = {
    "langgraph": "langgraph",
    "langchain": "langchain",
    "langchain_core": "langchain",
    "langchain_community": "langchain",
    "langchain_openai": "langchain",
    "databricks_langchain": "langchain",
    "openai": "openai",
    "databricks_openai": "databricks-openai",
    "agents": "openai-agents",
    "dspy": "dspy",
}
FRAMEWORKS = ("langgraph", "langchain", "openai", "databricks-openai", "openai-agents", "dspy", "plain")
LANGCHAIN_FAMILY = {"langgraph", "langchain"}

# Databricks' LangGraph savers and stores keep their state in Lakebase.
LAKEBASE_CLASSES = {"CheckpointSaver", "AsyncCheckpointSaver", "DatabricksStore", "AsyncDatabricksStore"}

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
    source.aliases = import_aliases(source)
    return source


# ---------------------------------------------------------------------------------------------------- names


def dotted_name(node: ast.AST) -> str | None:
    """`a.b.c` for a Name/Attribute chain (through calls and subscripts: `OpenAI().chat` → `OpenAI.chat`)."""
    parts = []
    while True:
        if isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        elif isinstance(node, (ast.Call, ast.Subscript)):
            node = node.func if isinstance(node, ast.Call) else node.value
        elif isinstance(node, ast.Name):
            parts.append(node.id)
            return ".".join(reversed(parts))
        else:
            return None


def absolute_module(source: SourceFile, module: str, level: int) -> str | None:
    """The absolute name of `from <level dots><module> import ...` in `source`; None if it has no package."""
    if level == 0:
        return module
    if source.module is None:
        return None  # the entry file runs as a script: a relative import there fails at load time
    package = source.module.split(".") if source.is_package else source.module.split(".")[:-1]
    if level - 1 > len(package):
        return None
    base = package[: len(package) - (level - 1)]
    return ".".join(base + ([module] if module else [])) or None


def import_aliases(source: SourceFile) -> dict[str, str]:
    """Local name → what it was imported as (`sleep` → `time.sleep`, `RA` → `mlflow.pyfunc.ResponsesAgent`).

    Relative imports are made absolute from the file's package (`from .base import B` in `pkg/agent.py`
    → `pkg.base.B`); one that cannot be (in the entry file) keeps its dots.
    """
    aliases: dict[str, str] = {}
    for node in ast.walk(source.tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    aliases[alias.asname] = alias.name
                else:
                    top = alias.name.split(".")[0]
                    aliases[top] = top
        elif isinstance(node, ast.ImportFrom):
            module = absolute_module(source, node.module or "", node.level)
            if module is None:
                module = "." * node.level + (node.module or "")
            for alias in node.names:
                joined = f"{module}.{alias.name}" if module and not module.endswith(".") else module + alias.name
                aliases[alias.asname or alias.name] = joined
    return aliases


def qualified(source: SourceFile, dotted: str | None) -> str | None:
    """`dotted` with its first name replaced by what it was imported as."""
    if dotted is None:
        return None
    head, _, rest = dotted.partition(".")
    target = source.aliases.get(head, head)
    return f"{target}.{rest}" if rest else target


def module_level_statements(tree: ast.Module):
    """Statements run at import time: the module body and the bodies of its top-level if/try/with blocks."""
    pending = list(tree.body)
    while pending:
        node = pending.pop(0)
        yield node
        if isinstance(node, (ast.If, ast.Try, ast.With)):
            for block in ("body", "orelse", "finalbody", "handlers"):
                pending.extend(getattr(node, block, []))
        elif isinstance(node, ast.ExceptHandler):
            pending.extend(node.body)


# ---------------------------------------------------------------------------------------------------- code/ modules


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


def code_files(root: Path) -> tuple[list[str], list[str]]:
    """Python files and other files under `root/code/`, as paths relative to `root`, sorted."""
    code = root / CODE_DIR
    if not code.is_dir():
        return [], []
    python, other = [], []
    for path in sorted(code.rglob("*")):
        if not path.is_file() or "__pycache__" in path.parts:
            continue
        (python if path.suffix == ".py" else other).append(path.relative_to(root).as_posix())
    return python, other


def packages_of(python_paths: list[str]) -> list[dict]:
    """The folders of code/ that hold Python files: regular packages (with `__init__.py`) or namespace ones."""
    folders: dict[str, bool] = {}
    for path in python_paths:
        parts = path.split("/")[1:-1]  # without `code/` and the file name
        for depth in range(1, len(parts) + 1):
            folder = "/".join(parts[:depth])
            folders.setdefault(folder, False)
        if parts and path.endswith("/__init__.py"):
            folders["/".join(parts)] = True
    return [{"path": f"{CODE_DIR}/{folder}", "module": folder.replace("/", "."), "has_init": has_init}
            for folder, has_init in sorted(folders.items())]


def local_imports(source: SourceFile, code_modules: dict[str, str]) -> list[dict]:
    """The imports of `source` that load a code/ module, with the file(s) each one loads."""
    if source.tree is None:
        return []
    edges = []
    for node in ast.walk(source.tree):
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


# ---------------------------------------------------------------------------------------------------- the agent class


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
    for node in ast.walk(entry.tree):
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


def yields(function: ast.AST) -> bool:
    """Whether `function`'s own body yields (a yield in a nested function does not count)."""
    pending = list(ast.iter_child_nodes(function))
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.Yield, ast.YieldFrom)):
            return True
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            pending.extend(ast.iter_child_nodes(node))
    return False


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


# ---------------------------------------------------------------------------------------------------- imports


def import_sites(source: SourceFile) -> list[dict]:
    """Every import of a file: the module as written (relative ones keep their dots), line and names."""
    if source.tree is None:
        return []
    sites = []
    for node in ast.walk(source.tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                sites.append({"module": alias.name, "line": node.lineno, "names": [], "level": 0})
        elif isinstance(node, ast.ImportFrom):
            sites.append({"module": node.module or "", "line": node.lineno, "level": node.level,
                          "names": [alias.name for alias in node.names]})
    return sorted(sites, key=lambda site: site["line"])


def detect_frameworks(sources: list[SourceFile], local_top_level: set[str]) -> list[dict]:
    """The agent frameworks imported anywhere in the model's code, each with the imports that show it."""
    evidence: dict[str, list[dict]] = {}
    for source in sources:
        for site in import_sites(source):
            top = site["module"].split(".")[0]
            if site["level"] or top in local_top_level or top not in FRAMEWORK_MODULES:
                continue
            evidence.setdefault(FRAMEWORK_MODULES[top], []).append(
                {"path": source.path, "line": site["line"], "text": source.line(site["line"])})
        # databricks-sdk's `serving_endpoints.get_open_ai_client()` returns an `openai.OpenAI` client.
        for node in ast.walk(source.tree) if source.tree else ():
            if isinstance(node, ast.Call) and (dotted_name(node.func) or "").endswith("get_open_ai_client"):
                evidence.setdefault("openai", []).append(source.site(node))
    if not evidence:
        return [{"name": "plain", "evidence": []}]
    return [{"name": name, "evidence": evidence[name]} for name in FRAMEWORKS if name in evidence]


def imports_langchain(source: SourceFile) -> bool:
    return any(FRAMEWORK_MODULES.get(site["module"].split(".")[0]) in LANGCHAIN_FAMILY
               for site in import_sites(source) if not site["level"])


# ---------------------------------------------------------------------------------------------------- scans


def _is_saver(qualified_name: str) -> bool:
    """A LangGraph checkpointer class: `MemorySaver`, `PostgresSaver`, databricks_langchain's `CheckpointSaver`."""
    return qualified_name.rsplit(".", 1)[-1].endswith("Saver") and qualified_name.split(".")[0] in {
        "langgraph", "databricks_langchain"}


def _is_store(qualified_name: str) -> bool:
    top, last = qualified_name.split(".")[0], qualified_name.rsplit(".", 1)[-1]
    return last.endswith("Store") and top in {"langgraph", "databricks_langchain"}


def state_signals(source: SourceFile) -> list[dict]:
    """Where the agent keeps conversation state: checkpointers, stores, thread and conversation ids, Lakebase."""
    if source.tree is None:
        return []
    found: dict[tuple[str, int], dict] = {}

    def note(signal: str, node: ast.AST) -> None:
        found.setdefault((signal, node.lineno), source.site(node, signal=signal))

    for node in ast.walk(source.tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                name = f"{node.module}.{alias.name}"
                if _is_saver(name):
                    note("checkpointer", node)
                elif _is_store(name):
                    note("store", node)
                if node.module.split(".")[0] == "databricks_langchain" and alias.name in LAKEBASE_CLASSES:
                    note("lakebase", node)
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = [alias.name for alias in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            if any(module.split(".")[0] in {"psycopg", "psycopg2", "psycopg_pool", "asyncpg"} for module in modules):
                note("postgres", node)
        elif isinstance(node, ast.Call):
            name = qualified(source, dotted_name(node.func)) or ""
            last = name.rsplit(".", 1)[-1]
            if _is_saver(name):
                note("checkpointer", node)
            elif _is_store(name):
                note("store", node)
            if ("lakebase" in name.lower() or last == "generate_database_credential"
                    or (name.split(".")[0] == "databricks_langchain" and last in LAKEBASE_CLASSES)):
                note("lakebase", node)
            for keyword in node.keywords:
                if keyword.arg == "checkpointer":
                    note("checkpointer", node)
                elif keyword.arg == "store" and last in {"compile", "create_react_agent", "create_agent"}:
                    note("store", node)
                elif keyword.arg in {"thread_id", "conversation_id"}:
                    note(keyword.arg, node)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if node.value in {"thread_id", "conversation_id"}:
                note(node.value, node)
            elif "lakebase" in node.value.lower():
                note("lakebase", node)
        elif isinstance(node, (ast.Name, ast.Attribute)):
            name = node.id if isinstance(node, ast.Name) else node.attr
            if name in {"thread_id", "conversation_id"}:
                note(name, node)
    return sorted(found.values(), key=lambda site: (site["line"], site["signal"]))


def artifact_access(source: SourceFile) -> list[dict]:
    """Where code reads MLflow artifacts: `context.artifacts["key"]`, `.artifacts.get("key")`, `"artifacts/..."`."""
    if source.tree is None:
        return []
    sites = []
    for node in ast.walk(source.tree):
        key = None
        if (isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute)
                and node.value.attr == "artifacts"):
            key = node.slice
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
              and isinstance(node.func.value, ast.Attribute) and node.func.value.attr == "artifacts" and node.args):
            key = node.args[0]
        if key is not None:
            literal = key.value if isinstance(key, ast.Constant) and isinstance(key.value, str) else None
            sites.append(source.site(node, key=literal, literal=None))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and (
                node.value.startswith("artifacts/") or "/artifacts/" in node.value):
            sites.append(source.site(node, key=None, literal=node.value))
    return sorted(sites, key=lambda site: site["line"])


def user_credential_sites(source: SourceFile) -> list[dict]:
    """Uses of Model Serving's on-behalf-of-user credentials, which Apps replaces by a per-request user client."""
    if source.tree is None:
        return []
    lines: dict[int, dict] = {}
    for node in ast.walk(source.tree):
        if (isinstance(node, ast.Name) and node.id == "ModelServingUserCredentials") or (
                isinstance(node, ast.Attribute) and node.attr == "ModelServingUserCredentials") or (
                isinstance(node, ast.ImportFrom) and any(alias.name == "ModelServingUserCredentials"
                                                         for alias in node.names)):
            lines.setdefault(node.lineno, source.site(node))
    return [lines[line] for line in sorted(lines)]


class _BlockingCallFinder(ast.NodeVisitor):
    """Calls that block the thread they run on, with the function they sit in and whether it is async.

    Awaited calls and the context managers of `async with` are async already and are left out. Which calls
    block is decided by `scripts.transform.blocking.kind_of`, the same rule the code step and the code check
    apply, so the analysis lists what the async mode will ask to convert.
    """

    def __init__(self, source: SourceFile):
        self.source = source
        self.module = parsed_module(source.tree, source.module or "__main__", source.path,
                                    is_package=source.is_package)
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
        return detect_frameworks(self.sources, local_top)

    def modules(self) -> list[dict]:
        return [{"path": source.path, "module": source.module, "is_package": source.is_package,
                 "imports": local_imports(source, self.code_modules)}
                for source in self.code_sources]

    def local_imports(self) -> list[dict]:
        return [edge for source in self.sources for edge in local_imports(source, self.code_modules)]

    def state_signals(self) -> list[dict]:
        return [site for source in self.sources for site in state_signals(source)]

    def artifact_reads(self) -> list[dict]:
        return [site for source in self.sources for site in artifact_access(source)]

    def user_credentials(self) -> list[dict]:
        return [site for source in self.sources for site in user_credential_sites(source)]

    def blocking_calls(self) -> list[dict]:
        return [site for source in self.sources for site in blocking_calls(source)]


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
    return AgentSource(entry, code_sources, other_paths, search, describe_agent_class(index, search))
