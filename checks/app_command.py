"""Part of the bundle check: what Databricks Apps runs exists in the app folder.

`source_code_path` is a folder next to databricks.yml, and the app's command (in databricks.yml, else in
app.yaml) runs the `start-server` script that pyproject.toml points at a function of the app.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from scripts.bundle import BUNDLE_FILE
from scripts.core.errors import MigrateError
from scripts.core.findings import Finding
from scripts.core.layout import MigrationLayout
from scripts.core.reports import read_report

SERVER_SCRIPT = "start-server"


def source_code_findings(app_dir: Path, app: dict, shown: str) -> list[Finding]:
    path = app.get("source_code_path")
    if not isinstance(path, str) or "${" in path:
        return []
    if not (app_dir / path).is_dir():
        return [Finding("RES110", "error", shown, f"source_code_path {path!r} is not a folder next to databricks.yml",
                        "set `source_code_path: .` (the app folder is the source)")]
    return []


def configured_command(app_dir: Path, app: dict) -> tuple[list[str] | None, str]:
    command = (app.get("config") or {}).get("command")
    if command:
        return [str(part) for part in command] if isinstance(command, list) else None, BUNDLE_FILE
    app_yaml = app_dir / "app.yaml"
    if app_yaml.is_file():
        import yaml

        try:
            command = (yaml.safe_load(app_yaml.read_text(encoding="utf-8")) or {}).get("command")
        except yaml.YAMLError:
            return None, "app.yaml"
        return ([str(part) for part in command] if isinstance(command, list) else None), "app.yaml"
    return None, BUNDLE_FILE


def command_findings(app_dir: Path, app: dict, shown: str) -> list[Finding]:
    command, where = configured_command(app_dir, app)
    fix = f'set `config.command: ["uv", "run", "{SERVER_SCRIPT}"]` in databricks.yml'
    if not command:
        return [Finding("RES111", "error", shown, "the app has no command: Apps would not start the agent server", fix)]
    if SERVER_SCRIPT not in command:
        return [Finding("RES111", "error", f"{app_dir.name}/{where}",
                        f"the command {' '.join(command)!r} does not run {SERVER_SCRIPT}", fix)]
    try:
        scripts = tomllib.loads((app_dir / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
        module, function = scripts[SERVER_SCRIPT].split(":")
    except (OSError, tomllib.TOMLDecodeError, KeyError, ValueError):
        return [Finding("RES111", "error", f"{app_dir.name}/pyproject.toml",
                        f"pyproject.toml defines no `{SERVER_SCRIPT}` script for the command to run",
                        f'add `[project.scripts] {SERVER_SCRIPT} = "agent_server.start_server:main"`')]
    module_file = app_dir / (module.replace(".", "/") + ".py")
    if not module_file.is_file() or not re.search(rf"^def {re.escape(function)}\(", module_file.read_text(
            encoding="utf-8"), re.MULTILINE):
        return [Finding("RES111", "error", f"{app_dir.name}/pyproject.toml",
                        f"`{SERVER_SCRIPT}` points at {module}:{function}, which does not exist in the app",
                        "restore agent_server/start_server.py with `migrate scaffold --force`")]
    return []


def server_workers(command: list[str] | None) -> int:
    """How many server processes `start-server [--workers N]` runs (1 when the option is absent or unreadable)."""
    command = command or []
    for at, part in enumerate(command):
        value = part.split("=", 1)[1] if part.startswith("--workers=") else (
            command[at + 1] if part == "--workers" and at + 1 < len(command) else None)
        if value is not None:
            return int(value) if value.isdigit() else 1
    return 1


def process_memory_state(analysis: dict) -> list[str]:
    """What the analysis says the agent keeps in process memory across requests, as `path:line what`: an
    in-memory checkpointer or store, module globals or class attributes written per request, and instance
    state shared on purpose (written under a lock). Per-request instance writes are not listed: the code step
    builds the agent per request for them."""
    state = (analysis.get("payload") or {}).get("state") or {}
    found = [f"{site['path']}:{site['line']} {site.get('text', '').strip()}" for site in state.get("signals") or []
             if site.get("signal") in ("checkpointer", "store") and "memory" in site.get("text", "").lower()]
    found += [f"{write['path']}:{write['line']} writes {write['attribute']} ({write['kind']}) in {write['function']}"
              for write in state.get("request_writes") or []
              if write.get("kind") in ("module", "class") or write.get("guarded")]
    return found


def workers_findings(app_dir: Path, app: dict, shown: str) -> list[Finding]:
    """More than one server process gives each its own memory: state kept there splits between them."""
    command, where = configured_command(app_dir, app)
    workers = server_workers(command)
    if workers <= 1:
        return []
    try:
        analysis = read_report(MigrationLayout.for_app(app_dir), "analyze")
    except MigrateError:
        analysis = None  # its own check says what is wrong with it
    if analysis is None:
        return [Finding("RES041", "unverified", f"{app_dir.name}/{where}",
                        f"the app runs {workers} server processes, and without a readable analysis "
                        "(migration/reports/analyze.json) nothing says the agent keeps no state in process memory",
                        "run `migrate analyze` and `migrate scaffold` again, or run one worker")]
    state = process_memory_state(analysis)
    if not state:
        return []
    return [Finding("RES040", "error", f"{app_dir.name}/{where}",
                    f"the app runs {workers} server processes, but the agent keeps state in process memory, so "
                    f"each process has its own copy and a user's next request may reach one that never saw the "
                    f"last: {'; '.join(state[:4])}",
                    "run one worker (`migrate resources --workers 1`), or move the state out of the process "
                    "(Lakebase: skills/stateful-agents/SKILL.md)")]
