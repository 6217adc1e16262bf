"""The setup check: the app installs the way Databricks Apps installs it, from files alone.

`requirements.txt` holds only `uv`, `pyproject.toml` carries every agent requirement (or a known reason it
was left out) with an MLflow that has `mlflow.genai.agent_server`, `uv.lock` records exactly the
dependencies of `pyproject.toml`, the README hatchling needs exists, and `.env` is not committed.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from scripts.app_pyproject import TOOL_TABLE, WRITTEN_KEY, written_by_setup
from scripts.core.findings import Finding
from scripts.core.layout import MigrationLayout
from scripts.core.reports import read_report
from scripts.gitignore import env_is_ignored
from scripts.model.requirement_lines import read_requirement_lines

MLFLOW_FLOOR = "3.17"
# Versions just below the floor: an MLflow requirement admitting any of them can install an MLflow
# without `mlflow.genai.agent_server`.
BELOW_FLOOR = ("3.16.2", "3.16.0", "3.0.0", "2.22.0")


def requirement_key(name: str, specifier: str, extras: list[str] | tuple[str, ...] = ()) -> tuple:
    return canonicalize_name(name), SpecifierSet(specifier or ""), tuple(sorted(canonicalize_name(e) for e in extras))


def lock_requirements(lock: dict, project_name: str) -> list[tuple] | None:
    """What uv.lock recorded as the project's requirements (None when the project is not in it)."""
    for package in lock.get("package", []):
        if canonicalize_name(package.get("name", "")) == canonicalize_name(project_name):
            recorded = package.get("metadata", {}).get("requires-dist", [])
            return sorted((requirement_key(entry["name"], entry.get("specifier", ""), entry.get("extras", ()))
                           for entry in recorded), key=repr)
    return None


def dependency_findings(app: Path) -> list[Finding]:
    """requirements.txt, pyproject.toml and uv.lock agree (shared with the bundle check)."""
    name = app.name
    findings = []
    requirements = app / "requirements.txt"
    if not requirements.is_file():
        findings.append(Finding("SET101", "error", f"{name}/requirements.txt", "requirements.txt is missing",
                                "run `migrate setup`: Databricks Apps needs a requirements.txt holding only `uv`"))
    else:
        listed = [line.strip() for line in requirements.read_text(encoding="utf-8").splitlines()
                  if line.strip() and not line.strip().startswith("#")]
        if listed != ["uv"]:
            findings.append(Finding(
                "SET101", "error", f"{name}/requirements.txt",
                f"requirements.txt lists {', '.join(listed) or 'nothing'}: Databricks Apps would install from it "
                "with pip and ignore pyproject.toml and uv.lock",
                "make requirements.txt hold the single line `uv` (move packages into pyproject.toml)"))
    try:
        pyproject = tomllib.loads((app / "pyproject.toml").read_text(encoding="utf-8"))
        project = pyproject["project"]
    except (OSError, tomllib.TOMLDecodeError, KeyError) as error:
        findings.append(Finding("SET109", "error", f"{name}/pyproject.toml", f"pyproject.toml is unreadable: {error}",
                                "restore it with `migrate scaffold --force`, then run `migrate setup`"))
        return findings
    try:
        declared = sorted((requirement_key(r.name, str(r.specifier), r.extras)
                           for r in map(Requirement, project.get("dependencies", []))), key=repr)
    except InvalidRequirement as error:
        findings.append(Finding("SET109", "error", f"{name}/pyproject.toml", f"a dependency is not valid: {error}",
                                "fix the dependency line in pyproject.toml, then run `migrate setup`"))
        return findings
    lock_path = app / "uv.lock"
    if not lock_path.is_file():
        findings.append(Finding("SET102", "error", f"{name}/uv.lock", "uv.lock is missing",
                                "run `migrate setup` (it runs `uv lock`)"))
        return findings
    lock = tomllib.loads(lock_path.read_text(encoding="utf-8"))
    recorded = lock_requirements(lock, project.get("name", ""))
    if recorded != declared:
        in_lock = {key[0] for key in recorded or []}
        differ = sorted({key[0] for key in set(declared) ^ set(recorded or [])}) or sorted(in_lock)
        findings.append(Finding(
            "SET103", "error", f"{name}/uv.lock",
            f"uv.lock does not match pyproject.toml's dependencies (differ: {', '.join(differ) or 'project missing'})",
            "run `uv lock` in the app folder (or `migrate setup`) and commit the new uv.lock"))
    for package in lock.get("package", []):
        if package.get("name") == "mlflow" and Version(package.get("version", "0")) < Version(MLFLOW_FLOOR):
            findings.append(Finding(
                "SET108", "error", f"{name}/uv.lock",
                f"uv.lock installs mlflow {package['version']}, which has no mlflow.genai.agent_server",
                f"require mlflow>={MLFLOW_FLOOR} in pyproject.toml and run `uv lock`"))
    return findings


def mlflow_findings(app: Path, dependencies: list[str]) -> list[Finding]:
    mlflow = [Requirement(line) for line in dependencies if canonicalize_name(Requirement(line).name) == "mlflow"]
    if not mlflow:
        return [Finding("SET106", "error", f"{app.name}/pyproject.toml", "pyproject.toml does not depend on mlflow",
                        f"add \"mlflow>={MLFLOW_FLOOR}\" to dependencies (the app server is mlflow.genai.agent_server)")]
    findings = []
    for requirement in mlflow:
        admitted = [version for version in BELOW_FLOOR if requirement.specifier.contains(version, prereleases=True)]
        if admitted:
            findings.append(Finding("SET106", "error", f"{app.name}/pyproject.toml",
                                    f"`{requirement}` admits mlflow {admitted[0]}, which has no mlflow.genai.agent_server",
                                    f"require mlflow>={MLFLOW_FLOOR} (keep a pin only if it is {MLFLOW_FLOOR} or newer)"))
    return findings


def recorded_decisions(layout: MigrationLayout) -> dict[str, dict]:
    """Setup's decision per package (per line for a line that names none), as its report recorded them."""
    report = read_report(layout, "setup")
    decided: dict[str, dict] = {}
    for decision in (report or {}).get("payload", {}).get("decisions", []):
        decided.setdefault(decision["package"] or decision["requirement"], decision)
    return decided


def carried_findings(layout: MigrationLayout, dependencies: list[str], pyproject: dict) -> list[Finding]:
    """Each original requirement is in pyproject.toml, or setup's report says why it is not (dropped, provided
    by the scaffold, unsupported, or the user's removal of a line setup wrote, which pyproject.toml records)."""
    source = layout.source / "requirements.txt"
    if not source.is_file():
        return []
    shown = f"{layout.root.name}/pyproject.toml"
    present = {canonicalize_name(Requirement(line).name) for line in dependencies}
    decided = recorded_decisions(layout)
    written = written_by_setup(pyproject)
    findings = []
    for read in read_requirement_lines(source.read_text(encoding="utf-8")):
        package = canonicalize_name(read.requirement.name) if read.requirement else None
        if package in present:
            continue
        decision = decided.get(package or read.line)
        if decision is None:
            findings.append(Finding(
                "SET107", "error", shown,
                f"the agent's requirement {read.line!r} is not in pyproject.toml, and setup's report records no "
                "decision for it (the original requirements changed since setup ran, or setup did not run)",
                "run `migrate setup`, then commit pyproject.toml and uv.lock"))
        elif decision["result"] is None and decision["action"] == "yours" or \
                decision["result"] is not None and package in written:
            reason = decision["reason"] if decision["action"] == "yours" else \
                f"you removed {written[package]!r}, which setup wrote"
            findings.append(Finding(
                "SET107", "warning", shown,
                f"the agent's requirement {decision['requirement']!r} is not in pyproject.toml: {reason}",
                "nothing to do if the agent runs without it; otherwise add it back to dependencies, then `uv lock`"))
        elif decision["result"] is not None:
            findings.append(Finding(
                "SET107", "error", shown,
                f"the agent's requirement {decision['requirement']!r} is not in pyproject.toml",
                f"add \"{decision['result']}\" to dependencies (or run `migrate setup`), then `uv lock`"))
    return findings + record_findings(shown, decided, written)


def record_findings(shown: str, decided: dict[str, dict], written: dict[str, str]) -> list[Finding]:
    """Setup's report and pyproject.toml's record of what setup wrote describe the same run."""
    differ = sorted(decision["package"] for decision in decided.values()
                    if decision["result"] and decision["action"] != "yours"
                    and written.get(decision["package"]) != decision["result"])
    if not differ:
        return []
    return [Finding("SET020", "warning", shown,
                    f"pyproject.toml's record of what setup wrote (`[tool.{TOOL_TABLE}] {WRITTEN_KEY}`) does not "
                    f"match setup's report for {', '.join(differ)}: the file was replaced or edited since setup ran",
                    "run `migrate setup` again: it keeps your dependency edits and records them anew")]


def check_setup(layout: MigrationLayout) -> list[Finding]:
    app = layout.root
    findings = dependency_findings(app)
    try:
        pyproject = tomllib.loads((app / "pyproject.toml").read_text(encoding="utf-8"))
        project = pyproject["project"]
    except (OSError, tomllib.TOMLDecodeError, KeyError):
        return findings  # already reported as SET109
    try:
        dependencies = [str(Requirement(line)) for line in project.get("dependencies", [])]
    except InvalidRequirement:
        return findings
    findings += mlflow_findings(app, dependencies)
    findings += carried_findings(layout, dependencies, pyproject)
    readme = project.get("readme", "README.md")
    readme = readme if isinstance(readme, str) else readme.get("file", "README.md")
    if not (app / readme).is_file():
        findings.append(Finding("SET105", "error", f"{app.name}/{readme}",
                                "the README pyproject.toml names is missing: hatchling cannot build the app",
                                "run `migrate setup` (it writes one) or create the file"))
    if not env_is_ignored(app):
        findings.append(Finding("SET104", "error", f"{app.name}/.gitignore",
                                ".env is not git-ignored: local settings and tokens would be committed",
                                "add a line `.env` to .gitignore (`migrate setup` does it)"))
    return findings
