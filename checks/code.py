"""The code check: the app's agent_server/ serves the agent, from the app's files alone (no original needed).

The entry module is imported in a fresh interpreter and the app's imports are read (checks/code_imports.py),
then the files are read: leftover agent classes, artifact paths, absolute paths of the original machine,
secrets, and blocking calls under async handlers; each other family of findings has its own module, called
from `check_code`.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from checks import secrets
from checks.code_claims import check_code_claims
from checks.code_imports import ENTRY, PACKAGE, external_imports, import_findings, local_import_findings
from checks.code_patterns import check_code_patterns
from checks.code_reach import request_roots, used_classes
from checks.request_state import request_state_findings
from checks.undefined_names import undefined_name_findings
from checks.user_credentials import user_credential_findings
from scripts.core.findings import Finding
from scripts.core.layout import MigrationLayout
from scripts.model.blocking import blocking_calls, dotted_name
from scripts.model.parsed_modules import ParsedModule, parse_app_modules

PLACEHOLDER_MARKER = "this app has no agent yet"
AGENT_BASES = {"ResponsesAgent", "PythonModel"}
CHAT_BASES = {"ChatAgent", "ChatModel"}
CHAT_AGENT_ADAPTER = f"{PACKAGE}.chat_agent_adapter"
CHAT_MODEL_ADAPTER = f"{PACKAGE}.chat_model_adapter"
# Where a path written on the original machine starts: home folders, the Databricks driver's disks.
MACHINE_PATH = re.compile(r"^(/Users/|/home/|/root/|/dbfs/|/local_disk0/|/Workspace/|/databricks/driver|[A-Za-z]:[\\/])")
MACHINE_PATH_IN_TEXT = re.compile(r"""(?:^|[\s"'=:])(/Users/|/home/|/dbfs/|/local_disk0/|/Workspace/)[^\s"']+""")


def check_code(layout: MigrationLayout) -> list[Finding]:
    app = layout.root
    entry = app / ENTRY
    if not entry.is_file() or PLACEHOLDER_MARKER in entry.read_text(encoding="utf-8", errors="replace"):
        return [Finding("COD011", "error", f"{app.name}/{ENTRY}",
                        "agent_server/agent.py is missing or still the scaffold's placeholder",
                        "run `migrate code --mode sync` (or async) to migrate the agent into it")]
    modules = parse_app_modules(app / PACKAGE, PACKAGE)
    external = sorted(external_imports(modules))
    findings = import_findings(app, external)
    findings += agent_class_findings(app, modules)
    findings += local_import_findings(app, modules)
    findings += artifact_findings(app, modules)
    findings += machine_path_findings(app, modules)
    findings += secret_findings(app)
    findings += check_code_claims(layout)
    findings += user_credential_findings(app)  # user-identity: checks/user_credentials.py
    findings += request_state_findings(layout, modules)  # request state: checks/request_state.py
    findings += check_code_patterns(layout, modules)  # patterns (issue 11): checks/code_patterns.py
    findings += undefined_name_findings(app, ENTRY)  # checks/undefined_names.py
    findings += [Finding("COD010", "error", f"{app.name}/{site.path}:{site.line}",
                         f"`{site.call}` blocks the event loop under an async handler ({site.kind}, in {site.function})",
                         site.fix)
                 for site in blocking_calls(modules, request_roots(modules, f"{PACKAGE}.agent"))]
    return findings


# ---------------------------------------------------------------------------------------------------- classes


def _base_names(node: ast.ClassDef) -> set[str]:
    return {(dotted_name(base) or "").rsplit(".", 1)[-1] for base in node.bases}


def agent_class_findings(app: Path, modules: dict[str, ParsedModule]) -> list[Finding]:
    entry = modules.get(f"{PACKAGE}.agent")
    # Wrapper mode: the instance's class (created at module level or by a factory) and the user's classes it
    # derives from serve the handlers; a class nothing in the app uses is left as copied (checks/code_reach.py).
    instantiated = used_classes(modules)
    # Chat wrapper mode: the entry module's handlers reach a ChatAgent instance through the adapter.
    adapted = entry is not None and any(target == CHAT_AGENT_ADAPTER or target.startswith(f"{CHAT_AGENT_ADAPTER}.")
                                        for target in entry.aliases.values())
    # shapes: a ChatModel's handlers go through agent_server/chat_model_adapter.py the same way.
    adapted_model = entry is not None and any(target.startswith(CHAT_MODEL_ADAPTER) for target in entry.aliases.values())
    findings = []
    for module in modules.values():
        for node in ast.walk(module.tree):
            if not isinstance(node, ast.ClassDef):
                continue
            bases = _base_names(node)
            where = f"{app.name}/{module.path}:{node.lineno}"
            if "ChatModel" in bases and adapted_model and node.name in instantiated:
                findings.append(Finding(
                    "COD081", "info", where,
                    f"{node.name} is a ChatModel served through agent_server/chat_model_adapter.py (Responses "
                    f"requests → predict(context, messages, params), its chat completion → output items)",
                    "check that predict reads no `context` and needs no sampling parameters from the request"))
            elif "ChatAgent" in bases and adapted and node.name in instantiated:
                findings.append(Finding(
                    "COD005", "info", where,
                    f"{node.name} is a ChatAgent served through agent_server/chat_agent_adapter.py (Responses "
                    f"requests → predict(messages, context, custom_inputs), its messages → output items)",
                    "review that its output roles map as expected: assistant text → message items, tool_calls → "
                    "function_call items, tool messages → function_call_output items, other roles' text → "
                    "assistant message items"))
            elif bases & CHAT_BASES and node.name in instantiated:
                findings.append(Finding(
                    "COD005", "error", where,
                    f"{node.name} is a {sorted(bases & CHAT_BASES)[0]}: AgentServer serves only the Responses format",
                    "convert it to a ResponsesAgent (assistant content → output_text items, tool_calls → function_call "
                    "items, tool messages → function_call_output items), or write handlers that do that mapping"))
            elif bases & AGENT_BASES and node.name not in instantiated and module is entry:
                findings.append(Finding(
                    "COD014", "error", where,
                    f"{node.name} still derives from {sorted(bases & AGENT_BASES)[0]} but no module-level instance "
                    f"of it serves the handlers (that is only right in wrapper mode)",
                    "finish the extraction (module-level functions called by @invoke/@stream) and delete the class, "
                    "or run `migrate code --force` again"))
    return findings


# ---------------------------------------------------------------------------------------------------- paths


def _path_chain(node: ast.AST) -> tuple[ast.AST, list[str]] | None:
    """`BASE / "a" / "b"` → (BASE, ["a", "b"]) when every right-hand side is a string constant."""
    parts = []
    while isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
        if not (isinstance(node.right, ast.Constant) and isinstance(node.right.value, str)):
            return None
        parts.append(node.right.value)
        node = node.left
    return (node, list(reversed(parts))) if parts else None


def _file_relative_base(node: ast.AST) -> int | None:
    """How many `.parent`s above the module's folder `Path(__file__).parent...` is, or None if it is not that."""
    parents = 0
    while isinstance(node, ast.Attribute) and node.attr == "parent":
        parents += 1
        node = node.value
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("resolve", "absolute"):
        node = node.func.value
    if (parents and isinstance(node, ast.Call) and (dotted_name(node.func) or "").rsplit(".", 1)[-1] == "Path"
            and len(node.args) == 1 and isinstance(node.args[0], ast.Name) and node.args[0].id == "__file__"):
        return parents - 1
    return None


def artifact_findings(app: Path, modules: dict[str, ParsedModule]) -> list[Finding]:
    findings = []
    for module in modules.values():
        folder = (app / module.path).parent
        chains = set()
        for node in ast.walk(module.tree):
            chain = _path_chain(node) if isinstance(node, ast.BinOp) and id(node) not in chains else None
            if chain:
                inner = node
                while isinstance(inner, ast.BinOp):
                    chains.add(id(inner))
                    inner = inner.left
                up = _file_relative_base(chain[0])
                if up is not None and "artifacts" in chain[1]:
                    target = folder.parents[up - 1] if up else folder
                    target = target.joinpath(*chain[1])
                    if not target.exists():
                        findings.append(Finding(
                            "COD017", "error", f"{app.name}/{module.path}:{node.lineno}",
                            f"the artifact {target.relative_to(app) if target.is_relative_to(app) else target} "
                            f"does not exist",
                            "copy the file into agent_server/artifacts/ (`migrate code --force` copies the model's "
                            "artifacts) or fix the path"))
            elif (isinstance(node, ast.Constant) and isinstance(node.value, str)
                  and node.value.startswith("artifacts/") and not (app / node.value).exists()):
                findings.append(Finding(
                    "COD017", "error", f"{app.name}/{module.path}:{node.lineno}",
                    f"{node.value!r} is relative to the working directory, where no such file is",
                    "use `Path(__file__).parent / \"artifacts\" / ...` (the artifacts live in agent_server/artifacts/)"))
    return findings


def machine_path_findings(app: Path, modules: dict[str, ParsedModule]) -> list[Finding]:
    findings = []
    for module in modules.values():
        for node in ast.walk(module.tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and MACHINE_PATH.match(node.value):
                findings.append(Finding(
                    "COD018", "error", f"{app.name}/{module.path}:{node.lineno}",
                    f"{node.value[:80]!r} is an absolute path of the machine the model was built on",
                    "ship the file in agent_server/ and use a path relative to the module "
                    "(`Path(__file__).parent / ...`), or read it from a Unity Catalog volume through the SDK"))
    for path in sorted((app / PACKAGE).rglob("*")):
        if path.suffix in (".yaml", ".yml", ".json", ".toml", ".cfg", ".ini", ".txt") and path.is_file():
            for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
                match = MACHINE_PATH_IN_TEXT.search(line)
                if match:
                    findings.append(Finding(
                        "COD018", "error", f"{app.name}/{path.relative_to(app).as_posix()}:{number}",
                        f"{match.group(0).strip()[:80]!r} is an absolute path of the machine the model was built on",
                        "make it relative to the app's files, or read it through the SDK"))
    return findings


def secret_findings(app: Path) -> list[Finding]:
    """Secrets in the migrated code (the bundle check reports those elsewhere in the app as RES113)."""
    return [Finding("COD019", "error", f"{app.name}/{hit.relative}" + (f":{hit.line}" if hit.line else ""),
                    f"{hit.what} is written in the file: it would be deployed with the app",
                    "delete it, revoke it, and give the app the credential as a resource or secret "
                    "(databricks.yml `value_from`); locally put it in .env, which is git-ignored")
            for hit in secrets.scan(app) if hit.in_code]
