"""Part of the bundle check: what Databricks Apps runs exists in the app folder.

`source_code_path` is a folder next to databricks.yml, and the app's command (in databricks.yml, else in
app.yaml) runs the `start-server` script that pyproject.toml points at a function of the app.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from scripts.bundle import BUNDLE_FILE
from scripts.core.findings import Finding

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
