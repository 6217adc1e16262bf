"""`migrate scaffold`: create the app folder from this repo's scaffold, and carry the migration facts into it.

The app gets `agent_server/`, `databricks.yml` (app name set), `pyproject.toml`, a README, `.gitignore`
(with `.env`) and `.env.example`: what Databricks Apps deploys, and nothing of the migration tooling.
A new app folder is built beside its target and renamed into place. With `--force` on an existing one,
only files that are missing or still exactly as an earlier scaffold wrote them are written: a file the
user (or a later step) changed is kept and reported.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path

from scripts.core.findings import Finding
from scripts.core import atomic
from scripts.core.app_names import APP_NAME_RULE, app_name_problem, bundle_key, suggested_name
from scripts.core.errors import MigrateError
from scripts.core.layout import MIGRATION_DIR, MigrationLayout
from scripts.core.reports import StepReport, carry_migration, read_report

STEP = "scaffold"
REPO = Path(__file__).resolve().parent.parent
APP_TEMPLATE = Path(__file__).resolve().parent / "app_template"

# Scaffold file in the app → where it comes from in this repo.
SCAFFOLD_SOURCES: dict[str, Path] = {
    "agent_server/__init__.py": REPO / "agent_server" / "__init__.py",
    "agent_server/agent.py": REPO / "agent_server" / "agent.py",
    "agent_server/chat_agent_adapter.py": REPO / "agent_server" / "chat_agent_adapter.py",
    "agent_server/start_server.py": REPO / "agent_server" / "start_server.py",
    "agent_server/sync_bridge.py": REPO / "agent_server" / "sync_bridge.py",
    "agent_server/user_auth.py": REPO / "agent_server" / "user_auth.py",
    "databricks.yml": REPO / "databricks.yml",
    "pyproject.toml": APP_TEMPLATE / "pyproject.toml",
    "README.md": APP_TEMPLATE / "README.md",
    ".gitignore": APP_TEMPLATE / "gitignore",
    ".env.example": APP_TEMPLATE / "env.example",
}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--app-name", required=True, help=f"the Databricks App's name ({APP_NAME_RULE})")
    parser.add_argument("--force", action="store_true",
                        help="scaffold into an existing app folder; files you changed are kept")


def validate_app_name(name: str) -> None:
    problem = app_name_problem(name)
    if problem:
        raise MigrateError(f"{name!r} is not a valid Databricks App name: {problem}",
                           f"use {APP_NAME_RULE}, for example --app-name {suggested_name(name)}")


def render_scaffold(app_name: str) -> dict[str, bytes]:
    """Every scaffold file's content for this app, by path relative to the app folder."""
    rendered = {}
    for relative, source in SCAFFOLD_SOURCES.items():
        text = source.read_text(encoding="utf-8")
        text = text.replace("__APP_NAME__", app_name).replace("__APP_KEY__", bundle_key(app_name))
        rendered[relative] = text.encode("utf-8")
    return rendered


def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


@dataclass(frozen=True)
class FilePlan:
    path: str
    action: str  # "create", "unchanged", "update", "kept"


def plan_files(app_dir: Path, rendered: dict[str, bytes], written_before: dict[str, str]) -> list[FilePlan]:
    """What to do with each scaffold file in an existing app folder.

    `written_before` maps paths to the hashes an earlier scaffold run wrote; a file whose hash differs from
    that was changed since, by the user or by a later step, and is kept.
    """
    plans = []
    for relative, content in rendered.items():
        target = app_dir / relative
        if not target.exists():
            plans.append(FilePlan(relative, "create"))
            continue
        current = sha256(target.read_bytes())
        if current == sha256(content):
            plans.append(FilePlan(relative, "unchanged"))
        elif written_before.get(relative) == current:
            plans.append(FilePlan(relative, "update"))
        else:
            plans.append(FilePlan(relative, "kept"))
    return plans


def carry_migration_folder(workdir_layout: MigrationLayout, app_dir: Path) -> list[str]:
    """Carry the working directory's `migration/` (reports, source facts) into the app, refreshing it."""
    if not workdir_layout.migration.is_dir():
        raise MigrateError(f"no {MIGRATION_DIR}/ in {workdir_layout.workdir}: the download step has not run here",
                           "run `migrate download` in this working directory first")
    return carry_migration(workdir_layout, app_dir)


def previous_scaffold_hashes(app_layout: MigrationLayout) -> dict[str, str]:
    report = read_report(app_layout, STEP)
    if not report:
        return {}
    return {entry["path"]: entry["written_sha256"] for entry in report["payload"]["files"]
            if entry["written_sha256"]}


def file_entry(app_dir: Path, plan: FilePlan, rendered: dict[str, bytes], written_before: dict[str, str]) -> dict:
    """The report's line for one scaffold file: its hash now, and the hash of what the scaffold wrote.

    A kept file keeps the earlier written hash, so a later `--force` still recognises it as the user's.
    """
    written = written_before.get(plan.path) if plan.action == "kept" else sha256(rendered[plan.path])
    return {"path": plan.path, "action": plan.action,
            "sha256": sha256((app_dir / plan.path).read_bytes()), "written_sha256": written}


def scaffold(workdir: Path, app_name: str, force: bool) -> StepReport:
    """Create (or, with force, refresh) `<workdir>/<app_name>/` and return the step's report."""
    validate_app_name(app_name)
    workdir_layout = MigrationLayout.for_workdir(workdir)
    app_dir = workdir_layout.workdir / app_name
    app_layout = MigrationLayout.for_app(app_dir)
    report = StepReport(step=STEP, inputs={"app_name": app_name, "force": force}, layout=app_layout)
    rendered = render_scaffold(app_name)
    written_before = previous_scaffold_hashes(app_layout)

    if app_dir.exists() and not force:
        raise MigrateError(f"{app_dir} already exists",
                           "pick another --app-name, or pass --force to refresh the scaffold files "
                           "(files you changed are kept)")
    if not app_dir.exists():
        staged = atomic.staging_dir(app_dir)
        try:
            for relative, content in rendered.items():
                (staged / relative).parent.mkdir(parents=True, exist_ok=True)
                (staged / relative).write_bytes(content)
            carried = carry_migration_folder(workdir_layout, staged)
            atomic.replace_dir(staged, app_dir)
        except BaseException:
            shutil.rmtree(staged, ignore_errors=True)
            raise
        plans = [FilePlan(relative, "create") for relative in rendered]
    else:
        plans = plan_files(app_dir, rendered, written_before)
        for plan in plans:
            if plan.action in ("create", "update"):
                atomic.write_text(app_dir / plan.path, rendered[plan.path].decode("utf-8"))
            if plan.action == "kept":
                report.findings.append(Finding(
                    "SCF001", "warning", f"{app_name}/{plan.path}",
                    "kept as it is: it differs from the scaffold and was changed after the scaffold wrote it",
                    "nothing to do if the change is yours; to take the scaffold's version, delete the file "
                    "and run `migrate scaffold --force` again"))
        carried = carry_migration_folder(workdir_layout, app_dir)

    report.payload = {
        "app_name": app_name,
        "bundle_key": bundle_key(app_name),
        "app_dir": app_layout.relative(app_dir),
        "files": [file_entry(app_dir, plan, rendered, written_before) for plan in plans],
        "carried": carried,
    }
    report.outputs = {"app": app_layout.relative(app_dir)}
    return report


def run(args: argparse.Namespace) -> StepReport:
    report = scaffold(args.workdir, args.app_name, args.force)
    payload = report.payload
    print(f"app folder: {payload['app_dir']}/")
    for entry in payload["files"]:
        print(f"  {entry['action']:<9} {entry['path']}")
    print(f"carried {len(payload['carried'])} migration file(s) into {payload['app_dir']}/migration/")
    return report
