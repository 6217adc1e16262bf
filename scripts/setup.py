"""`migrate setup`: make the app installable and runnable the way Databricks Apps runs it.

In order: decide what becomes of each line of the original `requirements.txt`, find or create the MLflow
experiment (when a workspace is configured), write the dependencies into `pyproject.toml`, make sure the
README and a `requirements.txt` holding only `uv` exist, run `uv lock`, fill `.env` from `.env.example`
without touching what the user set, and put the experiment id into `databricks.yml`.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict
from pathlib import Path

from scripts.core.findings import Finding
from scripts.core import atomic
from scripts.bundle import Bundle, set_experiment_default
from scripts.core.errors import MigrateError
from scripts.core.layout import MigrationLayout, find_app
from scripts.core.reports import StepReport
from scripts.setup_dependencies import (APP_TEMPLATE, Decision, decide_dependencies, lock, locked_version,
                                        merged_dependencies, read_pyproject, scaffold_dependencies, with_dependencies,
                                        with_user_edits)
from scripts.app_pyproject import written_by_setup
from scripts.setup_env import (ENV_FILE, EXPERIMENT_KEY, PROFILE_KEY, Experiment, ensure_env_ignored, fill_env,
                               find_or_create_experiment, workspace_configured)

STEP = "setup"
SOURCE_REQUIREMENTS = "requirements.txt"

# Databricks Apps installs with pip from a requirements.txt that lists packages and then ignores uv.lock;
# one that holds only `uv` makes it install from pyproject.toml + uv.lock (ARCHITECTURE §6).
APP_REQUIREMENTS_TEXT = "uv\n"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--app", type=Path, help="the app folder (default: the one app folder in --workdir)")
    parser.add_argument("--profile",
                        help="Databricks CLI profile of the workspace where the MLflow experiment is created "
                             "(default: DATABRICKS_HOST/DATABRICKS_TOKEN from the environment, if set)")
    parser.add_argument("--force", action="store_true",
                        help="replace an app requirements.txt that lists packages with one holding only `uv`")


# --- files the app needs --------------------------------------------------------------------------------------

def ensure_readme(app_dir: Path, project: dict, app_name: str) -> tuple[str, str]:
    """hatchling refuses to build without the README that pyproject.toml names."""
    readme = project.get("readme", "README.md")
    relative = readme if isinstance(readme, str) else readme.get("file", "README.md")
    path = (app_dir / relative).resolve()
    if not path.is_relative_to(app_dir.resolve()):  # setup writes nowhere but the app
        raise MigrateError(f"pyproject.toml names the readme {relative!r}, outside the app folder",
                           'name a file inside the app (`readme = "README.md"`), then run `migrate setup` again')
    if path.is_file():
        return relative, "unchanged"
    text = (APP_TEMPLATE / "README.md").read_text(encoding="utf-8")
    atomic.write_text(path, text.replace("__APP_NAME__", app_name).replace("__APP_KEY__", app_name.replace("-", "_")))
    return relative, "created"


def requirement_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


def ensure_requirements_txt(app_dir: Path, force: bool) -> str:
    path = app_dir / "requirements.txt"
    if not path.exists():
        atomic.write_text(path, APP_REQUIREMENTS_TEXT)
        return "created"
    listed = requirement_lines(path.read_text(encoding="utf-8"))
    if listed == ["uv"]:
        return "unchanged"
    if not force:
        raise MigrateError(
            f"{path} lists packages ({', '.join(listed[:5])}{', ...' if len(listed) > 5 else ''}): Databricks Apps "
            "would install from it with pip and ignore pyproject.toml and uv.lock",
            "move those packages into pyproject.toml, or pass --force to replace the file with one holding only `uv`",
            code="SET011")
    atomic.write_text(path, APP_REQUIREMENTS_TEXT)
    return "replaced"


# --- the step -------------------------------------------------------------------------------------------------

def app_name_of(bundle: Bundle) -> str:
    _, app = bundle.app_entry()
    name = app.get("name")
    if not isinstance(name, str) or not name:
        raise MigrateError(f"{bundle.path}: the app has no `name`", "restore it with `migrate scaffold --force`")
    return name


def setup(workdir: Path, app: Path | None, profile: str | None, force: bool) -> StepReport:
    layout = find_app(workdir, app)
    app_dir = layout.root
    report = StepReport(step=STEP, inputs={"app": layout.relative(app_dir), "profile": profile, "force": force},
                        layout=layout)
    bundle = Bundle.load(app_dir)
    app_name = app_name_of(bundle)
    source = layout.source / SOURCE_REQUIREMENTS
    decisions = original_decisions(layout, report)
    # The experiment first: a workspace problem stops the step before any file changes.
    experiment = experiment_of(profile, app_name, app_dir, report)
    decisions, dependencies, files = write_dependencies(app_dir, decisions, app_name, force)
    uv_summary = lock_dependencies(app_dir, dependencies, files)
    env_files, env_actions = write_env(app_dir, experiment, profile, report)
    files.update(env_files)
    # databricks.yml: the experiment the app's `experiment` resource points at.
    if experiment.experiment_id and set_experiment_default(bundle, experiment.experiment_id):
        bundle.save()
        files["databricks.yml"] = "updated"
    else:
        files["databricks.yml"] = "unchanged"
    report.payload = {
        "app_name": app_name,
        "requirements_source": layout.relative(source) if source.is_file() else None,
        "decisions": [asdict(decision) for decision in decisions],
        "dependencies": dependencies,
        "files": files,
        "uv": {"summary": uv_summary, "locked_mlflow": locked_version(app_dir, "mlflow")},
        "env": env_actions,
        "experiment": asdict(experiment),
    }
    report.outputs = {"pyproject": layout.relative(app_dir / "pyproject.toml"),
                      "lock": layout.relative(app_dir / "uv.lock"),
                      "env": layout.relative(app_dir / ENV_FILE)}
    return report


def original_decisions(layout: MigrationLayout, report: StepReport) -> list[Decision]:
    """What becomes of each line of the original requirements.txt (the copy the app carries)."""
    source = layout.source / SOURCE_REQUIREMENTS
    if not source.is_file():
        report.findings.append(Finding(
            "SET001", "warning", layout.relative(source),
            "the original model's requirements.txt is not in the app: only the scaffold's dependencies are used",
            "add the agent's packages to pyproject.toml by hand, or re-run `migrate scaffold --force` to carry "
            "migration/source/ in, then run `migrate setup` again"))
        return []
    decisions = decide_dependencies(source.read_text(encoding="utf-8").splitlines(), scaffold_dependencies())
    for decision in decisions:
        if decision.action == "unsupported":
            report.findings.append(Finding(
                "SET002", "warning", layout.relative(source),
                f"not carried into pyproject.toml: {decision.requirement!r} ({decision.reason})",
                "add the package to pyproject.toml `dependencies` by hand if the agent needs it"))
    return decisions


def experiment_of(profile: str | None, app_name: str, app_dir: Path, report: StepReport) -> Experiment:
    if workspace_configured(profile):
        return find_or_create_experiment(profile, app_name)
    report.findings.append(Finding(
        "SET004", "warning", f"{app_dir.name}/{ENV_FILE}",
        "no workspace configured: the MLflow experiment was not created and MLFLOW_EXPERIMENT_ID is empty",
        "run `migrate setup --profile PROFILE` (or with DATABRICKS_HOST and DATABRICKS_TOKEN set) once the "
        "workspace is reachable; it creates /Users/<you>/" + app_name + " and fills in its id"))
    return Experiment(None, None, "not_configured")


def write_dependencies(app_dir: Path, decisions: list[Decision], app_name: str,
                       force: bool) -> tuple[list[Decision], list[str], dict[str, str]]:
    """pyproject.toml (the user's edits since the last setup win), its README, and requirements.txt = `uv`."""
    text, pyproject = read_pyproject(app_dir)
    current = list(pyproject["project"].get("dependencies", []))
    decisions = with_user_edits(decisions, current, written_by_setup(pyproject))
    dependencies = merged_dependencies(current, decisions)
    updated = with_dependencies(text, dependencies, decisions)
    files = {"pyproject.toml": "unchanged" if updated == text else "updated"}
    if updated != text:
        atomic.write_text(app_dir / "pyproject.toml", updated)
    readme, files[readme] = ensure_readme(app_dir, pyproject["project"], app_name)
    files["requirements.txt"] = ensure_requirements_txt(app_dir, force)
    return decisions, dependencies, files


def lock_dependencies(app_dir: Path, dependencies: list[str], files: dict[str, str]) -> str:
    """uv.lock, matching pyproject.toml; uv's summary line."""
    lock_before = (app_dir / "uv.lock").read_bytes() if (app_dir / "uv.lock").exists() else None
    summary = lock(app_dir, dependencies)
    lock_after = (app_dir / "uv.lock").read_bytes()
    files["uv.lock"] = "created" if lock_before is None else ("unchanged" if lock_before == lock_after else "updated")
    return summary


def write_env(app_dir: Path, experiment: Experiment, profile: str | None,
              report: StepReport) -> tuple[dict[str, str], dict[str, str]]:
    """.env from .env.example (what the user set is kept), and kept out of git; (files, what became of each key)."""
    wanted = {}
    if experiment.experiment_id:
        wanted[EXPERIMENT_KEY] = experiment.experiment_id
    if profile:
        wanted[PROFILE_KEY] = profile
    files = {}
    files[ENV_FILE], env_actions = fill_env(app_dir, wanted)
    for key, value in wanted.items():
        if env_actions.get(key) == "kept":
            report.findings.append(Finding(
                "SET005", "warning", f"{app_dir.name}/{ENV_FILE}",
                f"{key} in .env keeps your value, not {value!r} from this setup",
                f"nothing to do if your value is intended; otherwise set {key}={value} in .env"))
    if ensure_env_ignored(app_dir):
        files[".gitignore"] = "updated"
    return files, env_actions


def run(args: argparse.Namespace) -> StepReport:
    report = setup(args.workdir, args.app, args.profile, args.force)
    payload = report.payload
    print(f"dependencies of {payload['app_name']}:")
    for decision in payload["decisions"]:
        shown = decision["result"] or "-"
        print(f"  {decision['action']:<11} {decision['requirement']:<32} -> {shown}  ({decision['reason']})")
    for path, action in payload["files"].items():
        print(f"  {action:<9} {path}")
    print(f"uv: {payload['uv']['summary']} (mlflow {payload['uv']['locked_mlflow']})")
    experiment = payload["experiment"]
    if experiment["experiment_id"]:
        print(f"experiment {experiment['name']} ({experiment['status']}): {experiment['experiment_id']}")
    return report
