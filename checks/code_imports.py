"""The code check's import half: the entry module imported in a fresh interpreter, and the app's imports read.

The probe runs in a separate interpreter because handlers register process-globally (never in this one); its
result is remembered by the app's file hashes (checks/probe_cache.py). `local_import_findings` reads the
imports that point at the model's code/ or artifacts/ folders, or at modules the app does not have.
"""

from __future__ import annotations

import ast
import json
import os
import sys
from pathlib import Path

from checks.probe_cache import cached_probe
from scripts import processes
from scripts.app_process import local_run_environment
from scripts.core.findings import Finding
from scripts.model.parsed_modules import ParsedModule

PACKAGE = "agent_server"
ENTRY = f"{PACKAGE}/agent.py"
IMPORT_TIMEOUT_SECONDS = 120
# What an import says when it needs a workspace this machine cannot reach: databricks-sdk's words when no
# credentials resolve or a profile is missing, and the connection errors of requests/urllib3/httpx.
WORKSPACE_OUT_OF_REACH = ("cannot configure default credentials", "resolve profile", "ConnectionError",
                          "Connection refused", "Max retries exceeded", "Name or service not known",
                          "Failed to establish a new connection", "ConnectTimeout", "timed out")
# Run in the app folder by a fresh interpreter: import the entry module, read MLflow's handler registry,
# and say which top-level modules the app imports that cannot be found. The cyclic collector stays off, as
# in the app's own start-up (agent_server/start_server.py): it would only walk what the imports build.
IMPORT_PROBE = """
import gc; gc.disable()
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



# ---------------------------------------------------------------------------------------------------- import


def run_import_probe(app: Path, modules: list[str]) -> dict:
    # Compiled modules kept between probes, MLflow's model catalog not fetched (scripts/app_process.py).
    completed = processes.run([sys.executable, "-c", IMPORT_PROBE, *modules], cwd=app,
                              env=local_run_environment(os.environ), timeout=IMPORT_TIMEOUT_SECONDS, check=False)
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
