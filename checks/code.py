"""The code check: the app's agent_server/ serves the agent, from the app's files alone (no original needed).

The entry module is imported in a fresh interpreter (handlers register process-globally, so never in
this one), then the files are read: leftover agent classes, imports that point outside the app, artifact
paths, absolute paths of the original machine, secrets, and blocking calls under async handlers.
"""

from __future__ import annotations

import ast
import json
import os
import re
import sys
from pathlib import Path

from checks import secrets
from checks.code_claims import check_code_claims
from checks.code_patterns import check_code_patterns
from checks.undefined_names import undefined_name_findings
from checks.code_reach import request_roots, used_classes
from scripts.core.findings import Finding
from checks.probe_cache import cached_probe
from checks.request_state import request_state_findings
from checks.user_credentials import user_credential_findings
from scripts import processes
from scripts.app_process import with_compiled_modules
from scripts.core.layout import MigrationLayout
from scripts.model.blocking import ParsedModule, blocking_calls, dotted_name, parse_app_modules

PACKAGE = "agent_server"
ENTRY = f"{PACKAGE}/agent.py"
PLACEHOLDER_MARKER = "this app has no agent yet"
IMPORT_TIMEOUT_SECONDS = 120
# What an import says when it needs a workspace this machine cannot reach: databricks-sdk's words when no
# credentials resolve or a profile is missing, and the connection errors of requests/urllib3/httpx.
WORKSPACE_OUT_OF_REACH = ("cannot configure default credentials", "resolve profile", "ConnectionError",
                          "Connection refused", "Max retries exceeded", "Name or service not known",
                          "Failed to establish a new connection", "ConnectTimeout", "timed out")
AGENT_BASES = {"ResponsesAgent", "PythonModel"}
CHAT_BASES = {"ChatAgent", "ChatModel"}
CHAT_AGENT_ADAPTER = f"{PACKAGE}.chat_agent_adapter"
CHAT_MODEL_ADAPTER = f"{PACKAGE}.chat_model_adapter"
# Where a path written on the original machine starts: home folders, the Databricks driver's disks.
MACHINE_PATH = re.compile(r"^(/Users/|/home/|/root/|/dbfs/|/local_disk0/|/Workspace/|/databricks/driver|[A-Za-z]:[\\/])")
MACHINE_PATH_IN_TEXT = re.compile(r"""(?:^|[\s"'=:])(/Users/|/home/|/dbfs/|/local_disk0/|/Workspace/)[^\s"']+""")
# Run in the app folder by a fresh interpreter: import the entry module, read MLflow's handler registry,
# and say which top-level modules the app imports that cannot be found.
IMPORT_PROBE = """
import importlib.util, json, sys, traceback
result = {"error": None, "invoke": None, "stream": None, "package": None, "missing": []}
try:
    from dotenv import load_dotenv
    load_dotenv()
except ImportError:
    pass
try:
    import agent_server.agent
    result["package"] = agent_server.__file__
except BaseException as error:
    result["error"] = f"{type(error).__name__}: {error}"
    result["traceback"] = traceback.format_exc(limit=-3)
from mlflow.genai.agent_server import get_invoke_function, get_stream_function
for kind, function in (("invoke", get_invoke_function()), ("stream", get_stream_function())):
    if function is not None:
        result[kind] = f"{function.__module__}.{function.__qualname__}"
for name in sys.argv[1:]:
    try:
        if importlib.util.find_spec(name) is None:
            result["missing"].append(name)
    except (ImportError, ValueError):
        result["missing"].append(name)
print("PROBE " + json.dumps(result))
"""


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


# ---------------------------------------------------------------------------------------------------- import


def run_import_probe(app: Path, modules: list[str]) -> dict:
    # Compiled modules kept between probes where PYTHONDONTWRITEBYTECODE is set (scripts/app_process.py).
    completed = processes.run([sys.executable, "-c", IMPORT_PROBE, *modules], cwd=app,
                              env=with_compiled_modules(os.environ), timeout=IMPORT_TIMEOUT_SECONDS, check=False)
    for line in completed.stdout.splitlines():
        if line.startswith("PROBE "):
            return app_relative(app, json.loads(line[len("PROBE "):]))
    tail = (completed.stderr or completed.stdout).strip().splitlines()[-3:]
    return {"error": "the interpreter stopped: " + " | ".join(tail), "invoke": None, "stream": None,
            "package": None, "missing": []}


def app_relative(app: Path, probe: dict) -> dict:
    """The probe with the package it loaded named relative to the app when it is the app's own: the result
    is remembered by content, and an identical app in another folder must not be told it loads this one's."""
    package = probe.get("package")
    if package and Path(package).resolve().is_relative_to(app.resolve()):
        probe["package"] = Path(package).resolve().relative_to(app.resolve()).as_posix()
    return probe


def import_findings(app: Path, external: list[str]) -> list[Finding]:
    try:
        probe = cached_probe(app, IMPORT_PROBE, external, lambda: run_import_probe(app, external))
    except processes.CommandTimedOut:
        return [Finding("COD012", "error", f"{app.name}/{ENTRY}",
                        f"importing agent_server.agent took more than {IMPORT_TIMEOUT_SECONDS}s",
                        "move slow work (model loads, network calls) out of import, or make it lazy")]
    findings = []
    path = f"{app.name}/{ENTRY}"
    if probe["error"]:
        if "can only be used once" in probe["error"]:
            findings.append(Finding("COD013", "error", path, f"a handler registers twice: {probe['error']}",
                                    "keep exactly one @invoke() and one @stream() function in the app"))
        else:
            hint = ""
            fix = ("run `uv run python -c \"import agent_server.agent\"` in the app folder and fix the error it "
                   "shows")
            if probe["error"].startswith("KeyError"):
                hint = " (a missing environment variable? put it in .env, which start-server loads)"
            elif workspace_out_of_reach(probe["error"]):
                # The code may be fine; this machine cannot reach the workspace the agent needs at import. Not
                # a failure of the migration, and not a pass either: the import could not be verified here.
                return [Finding("COD040", "unverified", path,
                                "the agent reaches the workspace at import, and no workspace answered here, so its "
                                f"import could not be verified: {probe['error']}",
                                "run `uv run migrate check --profile PROFILE --app APP_DIR` with a profile that reaches "
                                "the workspace (`databricks auth login --profile PROFILE` first), or `migrate setup "
                                "--profile PROFILE` to write it to the app's .env")]
            findings.append(Finding("COD012", "error", path,
                                    f"`import agent_server.agent` fails in a fresh interpreter: {probe['error']}{hint}",
                                    fix))
    elif probe["package"] and Path(probe["package"]).is_absolute():  # not the app's own (see app_relative)
        findings.append(Finding("COD012", "error", path,
                                f"`import agent_server` loads {probe['package']}, not the app's own package",
                                "remove the other agent_server from the Python path"))
    if not probe["error"]:
        for kind in ("invoke", "stream"):
            if probe[kind] is None:
                findings.append(Finding("COD013", "error", path, f"no @{kind}() function registers on import",
                                        f"decorate one async function in agent_server/agent.py with @{kind}()"))
    for name in probe["missing"]:
        findings.append(Finding("COD016", "error", f"{app.name}/{PACKAGE}",
                                f"the app imports `{name}`, which is neither in the app nor installed",
                                f"add the package that provides `{name}` to the app's dependencies "
                                f"(`migrate setup`), or copy the module into agent_server/"))
    return findings


def workspace_out_of_reach(error: str) -> bool:
    return any(words in error for words in WORKSPACE_OUT_OF_REACH)


def _is_optional(tree: ast.Module) -> set[int]:
    """Imports inside `try:` blocks: optional by design, not required to resolve."""
    optional = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try):
            for inner in node.body:
                for child in ast.walk(inner):
                    optional.add(id(child))
    return optional


def external_imports(modules: dict[str, ParsedModule]) -> set[str]:
    names = set()
    for module in modules.values():
        optional = _is_optional(module.tree)
        for node in ast.walk(module.tree):
            if id(node) in optional:
                continue
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names.add(node.module.split(".")[0])
    return names - {PACKAGE, "code", "artifacts", "__future__"}


def _module_exists(package_dir: Path, dotted: list[str]) -> bool:
    target = package_dir.joinpath(*dotted) if dotted else package_dir
    return target.with_suffix(".py").is_file() or target.is_dir()


def local_import_findings(app: Path, modules: dict[str, ParsedModule]) -> list[Finding]:
    findings = []
    for module in modules.values():
        for node in ast.walk(module.tree):
            imported: list[tuple[str, list[str]]] = []  # (as written, parts under agent_server)
            if isinstance(node, ast.Import):
                imported = [(alias.name, alias.name.split(".")) for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    package = module.name.split(".")
                    if not module.path.endswith("__init__.py"):
                        package = package[:-1]
                    base = package[: len(package) - node.level + 1]
                    parts = [*base, *(node.module.split(".") if node.module else [])]
                    imported = [("." * node.level + (node.module or ""), parts)]
                elif node.module:
                    imported = [(node.module, node.module.split("."))]
            for written, parts in imported:
                where = f"{app.name}/{module.path}:{node.lineno}"
                if parts[0] in ("code", "artifacts"):
                    findings.append(Finding(
                        "COD015", "error", where, f"`{written}` imports from the model's {parts[0]}/ folder, "
                        f"which the app does not have",
                        f"import the copied module from agent_server instead (e.g. `from agent_server.{'.'.join(parts[1:]) or 'helpers'} import ...`)"))
                elif parts[0] == PACKAGE and not _module_exists(app / PACKAGE, parts[1:]):
                    findings.append(Finding(
                        "COD015", "error", where, f"`{written}` points at a module that is not in the app",
                        "copy the module into agent_server/ or fix the import"))
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
                    f"use `Path(__file__).parent / \"artifacts\" / ...` (the artifacts live in agent_server/artifacts/)"))
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
