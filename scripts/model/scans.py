"""What the model's code uses: agent frameworks, conversation state, artifacts, user credentials."""

from __future__ import annotations

import ast

from scripts.model.imports import import_sites
from scripts.model.names import dotted_name, qualified
from scripts.model.source_file import SourceFile

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
        for node in source.nodes:
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

    for node in source.nodes:
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
    for node in source.nodes:
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
    for node in source.nodes:
        if (isinstance(node, ast.Name) and node.id == "ModelServingUserCredentials") or (
                isinstance(node, ast.Attribute) and node.attr == "ModelServingUserCredentials") or (
                isinstance(node, ast.ImportFrom) and any(alias.name == "ModelServingUserCredentials"
                                                         for alias in node.names)):
            lines.setdefault(node.lineno, source.site(node))
    return [lines[line] for line in sorted(lines)]
