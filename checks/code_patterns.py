"""The code check for code written for Model Serving or a notebook (issue 11), from the app's files alone.

- COD061: a path in Model Serving's container (`/model/...`), which the app does not have.
- COD063: a file read relative to the working directory (the app folder when it runs) that is not there.
- COD065, COD066: a notebook global (`dbutils`, `spark`, `display`), a module-level call of the agent (a test cell).
- COD067: a call at import that reaches the workspace or an LLM (what it costs, how to make it lazy).
- COD069: a module imported by its name as a string, which the app cannot import under that name.
- COD071: a name with an unfilled placeholder (`{env}`, `{{CATALOG}}`) in the app's resources or config.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import yaml

from scripts.core.findings import Finding
from scripts.core.layout import MigrationLayout
from scripts.model.parsed_modules import ParsedModule
from scripts.model.import_calls import COST, LAZY, import_time_calls
from scripts.model.names import dotted_name
from scripts.model.notebook import NOTEBOOK_GLOBALS, module_level_agent_calls, notebook_global_uses
from scripts.model.placeholders import placeholder_names

PACKAGE = "agent_server"
ORIGINAL_NAMES = f"{PACKAGE}/original_names.py"
ORIGINAL_NAMES_IMPORT = f"{PACKAGE}.original_names"
CONTAINER = re.compile(r"^/model(/|$)")
READ_CALLS = {"open", "io.open", "codecs.open"}
PATH_READS = {"read_text", "read_bytes", "open"}
DOTTED = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)+$")
CONFIG_SUFFIXES = (".yaml", ".yml", ".json")
# Files of the scaffold and of the code step: not modules of the model.
APP_OWN = {"agent", "start_server", "sync_bridge", "chat_agent_adapter", "original_names", "__init__", "artifacts"}


def check_code_patterns(layout: MigrationLayout, modules: dict[str, ParsedModule]) -> list[Finding]:
    app = layout.root
    findings = []
    for module in modules.values():
        where = f"{app.name}/{module.path}"
        findings += container_path_findings(where, module)
        findings += working_directory_findings(app, where, module)
        findings += notebook_findings(where, module)
        findings += import_call_findings(where, module)
    findings += original_name_findings(app, modules)
    findings += placeholder_findings(layout)
    return findings


def container_path_findings(where: str, module: ParsedModule) -> list[Finding]:
    return [Finding("COD061", "error", f"{where}:{node.lineno}",
                    f"{node.value[:80]!r} is a path in Model Serving's container, which the app does not have",
                    "use the app's copy relative to the module: `Path(__file__).parent / \"artifacts\" / NAME` for "
                    "artifacts, `Path(__file__).parent / ...` for files of the code_paths modules")
            for node in ast.walk(module.tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and CONTAINER.match(node.value)]


def _relative_file(value: object) -> bool:
    if not isinstance(value, str) or not value or value.startswith(("/", "~", "artifacts/")) or "://" in value:
        return False
    if any(mark in value for mark in ("\n", " ", "{")):
        return False
    return "." in value.rstrip("/").rsplit("/", 1)[-1].strip(".")


def working_directory_findings(app: Path, where: str, module: ParsedModule) -> list[Finding]:
    """Files read by a literal relative path: the app's server runs in the app folder, so that is where they are
    looked for."""
    read_paths = {id(node.value) for node in ast.walk(module.tree)
                  if isinstance(node, ast.Attribute) and node.attr in PATH_READS and isinstance(node.value, ast.Call)}
    findings = []
    for node in ast.walk(module.tree):
        if not isinstance(node, ast.Call) or not node.args or not isinstance(node.args[0], ast.Constant):
            continue
        name = dotted_name(node.func) or ""
        is_read = name in READ_CALLS or name.rsplit(".", 1)[-1].startswith("read_") and "." in name
        is_path = name.rsplit(".", 1)[-1] == "Path" and id(node) in read_paths
        mode = node.args[1].value if len(node.args) > 1 and isinstance(node.args[1], ast.Constant) else "r"
        value = node.args[0].value
        if (is_read or is_path) and _relative_file(value) and not set("wax") & set(str(mode)) \
                and not (app / value).exists():
            findings.append(Finding(
                "COD063", "error", f"{where}:{node.lineno}",
                f"{value!r} is read relative to the working directory (the app folder when it runs), where no such "
                f"file is",
                f"ship the file in agent_server/ and read it as `Path(__file__).parent / {value!r}`"))
    return findings


def notebook_findings(where: str, module: ParsedModule) -> list[Finding]:
    findings = [Finding("COD065", "error", f"{where}:{line}",
                        f"`{name}` is a notebook global: {NOTEBOOK_GLOBALS[name]}, so it is undefined in the app",
                        "replace it with configuration (environment variables, the model config), a `secret` app "
                        "resource, or the SQL statement API; delete display calls")
                for line, name in notebook_global_uses(module.tree)]
    findings += [Finding("COD066", "warning", f"{where}:{first}",
                         f"`{call}(...)` runs at module level (a notebook's test cell?): it calls the agent at every "
                         f"start of the app, before the first request",
                         "delete the statement; keep example requests in tests or the input example")
                 for first, _, call in module_level_agent_calls(module.tree, any_predict=True)]
    return findings


def import_call_findings(where: str, module: ParsedModule) -> list[Finding]:
    return [Finding("COD067", "warning", f"{where}:{call.line}",
                    f"`{call.call}(...)` runs at import and reaches {call.reaches}: {COST}", LAZY)
            for call in import_time_calls(module)]


# ---------------------------------------------------------------------------------------------------- names


def _named_modules(module: ParsedModule) -> list[tuple[int, str]]:
    """(line, name) of each module imported by a literal name: `importlib.import_module("x")`, `__import__("x")`."""
    found = []
    for node in ast.walk(module.tree):
        if (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
                and (dotted_name(node.func) or "").rsplit(".", 1)[-1] in ("import_module", "__import__")):
            found.append((node.lineno, node.args[0].value))
    return found


def _config_names(app: Path) -> list[tuple[str, str]]:
    """(file:line, dotted name) for each string in the app's config files that looks like a module path."""
    found = []
    for path in sorted((app / PACKAGE).rglob("*")):
        if path.suffix not in CONFIG_SUFFIXES or not path.is_file():
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            for word in re.findall(r"[A-Za-z_][\w.]*\.[A-Za-z_]\w*", line.split("#", 1)[0]):
                if DOTTED.match(word):
                    found.append((f"{path.relative_to(app).as_posix()}:{number}", word))
    return found


def _original_names(app: Path) -> dict[str, str]:
    """The original name → app module mapping the code step wrote, when the entry module installs it."""
    path, entry = app / ORIGINAL_NAMES, app / PACKAGE / "agent.py"
    if not path.is_file() or not entry.is_file() or f"import {ORIGINAL_NAMES_IMPORT}" not in entry.read_text(
            encoding="utf-8", errors="replace"):
        return {}
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "ORIGINAL_NAMES" for t in node.targets):
            try:
                return ast.literal_eval(node.value)
            except ValueError:
                return {}
    return {}


def _resolves(app: Path, module: str) -> bool:
    """Whether `agent_server.x.y` (or `agent_server.x` with attribute `y`) is a module file or folder of the app."""
    parts = module.split(".")
    for end in (len(parts), len(parts) - 1):  # the module itself, or a module and one of its attributes
        target = app.joinpath(*parts[:end])
        if end > 1 and (target.with_suffix(".py").is_file() or target.is_dir()):
            return True
    return False


def original_name_findings(app: Path, modules: dict[str, ParsedModule]) -> list[Finding]:
    package = app / PACKAGE
    local = {path.stem if path.suffix == ".py" else path.name for path in package.iterdir()
             if (path.suffix == ".py" or path.is_dir()) and path.stem not in APP_OWN and path.name != "__pycache__"} \
        if package.is_dir() else set()
    names = _original_names(app)
    references = [(f"{module.path}:{line}", name) for module in modules.values() for line, name in _named_modules(module)]
    references += _config_names(app)
    findings = []
    for where, name in references:
        head, _, rest = name.partition(".")
        if head not in local and head not in names:
            continue
        if head not in names:
            findings.append(Finding(
                "COD069", "error", f"{app.name}/{where}",
                f"`{name}` names a module by its original name, and the app has `{head}` only as `{PACKAGE}.{head}`",
                f"run `migrate code --force` again (it writes {ORIGINAL_NAMES}, which keeps the original names "
                f"importable), or write `{PACKAGE}.{name}`"))
        elif not _resolves(app, names[head] + ("." + rest if rest else "")):
            findings.append(Finding(
                "COD069", "error", f"{app.name}/{where}",
                f"`{name}` names a module the app does not have (it would load {names[head]}.{rest})",
                "fix the name, or copy the module into agent_server/"))
    return findings


# ---------------------------------------------------------------------------------------------------- placeholders


def _documents(layout: MigrationLayout) -> list[tuple[str, object]]:
    """(where, parsed document) for the names the app is given: analyze's resources, databricks.yml, config files."""
    app = layout.root
    documents = []
    analysis = layout.report_path("analyze")
    if analysis.is_file():
        try:
            payload = json.loads(analysis.read_text(encoding="utf-8")).get("payload") or {}
            documents.append(("MLmodel resources (analyze.json)", payload.get("resources") or []))
        except ValueError:
            pass
    paths = [app / "databricks.yml", *sorted((app / PACKAGE).rglob("*"))]
    for path in paths:
        if path.suffix in CONFIG_SUFFIXES and path.is_file():
            try:
                documents.append((path.relative_to(app).as_posix(), yaml.safe_load(path.read_text(encoding="utf-8"))))
            except yaml.YAMLError:
                continue
    return documents


def placeholder_findings(layout: MigrationLayout) -> list[Finding]:
    findings = []
    for where, document in _documents(layout):
        found = placeholder_names(document)
        if found:
            shown = ", ".join(f"{item.value!r} ({item.where})" for item in found[:6])
            findings.append(Finding(
                "COD071", "warning", f"{layout.root.name}/{where}",
                f"{len(found)} name(s) still hold a placeholder that was never filled in: {shown}; the app would use "
                f"them literally (a resource or endpoint of that name does not exist)",
                "replace each placeholder with the real name for this app's workspace (in databricks.yml resources "
                "after `migrate resources`, and in agent_server/ config files), or read it from an environment "
                "variable set in app.yaml"))
    return findings
