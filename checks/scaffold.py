"""The scaffold check: the app folder holds what Databricks Apps needs and none of the migration tooling."""

from __future__ import annotations

import json

from scripts.core.findings import Finding
from scripts.gitignore import env_is_ignored
from scripts.core.layout import MigrationLayout

# What a migration tool's checkout has and an app must not: it would be deployed with the app.
TOOLING = ("AGENTS.md", "CLAUDE.md", "skills", "scripts", "checks", "tests", "examples", "standin", "benchmarks",
           "original_mlflow_model")
REQUIRED = ("agent_server/__init__.py", "agent_server/start_server.py", "databricks.yml", "pyproject.toml",
            "README.md", ".gitignore")


def check_scaffold(layout: MigrationLayout) -> list[Finding]:
    report_path = layout.report_path("scaffold")
    report = json.loads(report_path.read_text(encoding="utf-8"))
    app = layout.root
    findings = []
    if report["payload"]["app_name"] != app.name:
        findings.append(Finding(
            "SCF006", "error", app.name,
            f"the app folder is named {app.name!r} but was scaffolded as {report['payload']['app_name']!r}",
            "rename the folder back, or run `migrate scaffold --app-name NEW_NAME` for a new app"))
    for relative in REQUIRED:
        if not (app / relative).is_file():
            findings.append(Finding("SCF003", "error", f"{app.name}/{relative}", "a scaffold file is missing",
                                    "run `migrate scaffold --app-name NAME --force` to restore it"))
    for name in TOOLING:
        if (app / name).exists():
            findings.append(Finding(
                "SCF004", "error", f"{app.name}/{name}",
                "migration tooling inside the app folder: it would be deployed with the app",
                f"move {name} out of the app folder; the app needs only what `migrate scaffold` wrote"))
    if (app / ".gitignore").is_file() and not env_is_ignored(app):
        findings.append(Finding("SCF005", "error", f"{app.name}/.gitignore", ".env is not git-ignored",
                                "add a line `.env` to .gitignore: it holds local settings and must not be committed"))
    return findings
