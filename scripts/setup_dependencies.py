"""What becomes of the original requirements in the app: one decision per line, pyproject.toml, uv.lock.

The agent's packages and pins are kept; what the app server needs is raised; what only Model Serving needed
is dropped. pyproject.toml is edited with tomlkit (comments and layout kept), and it remembers, under
`[tool.agent-migrate]`, the line setup wrote for each package: an entry the user changed or removed since
is the user's choice, and setup keeps it (issue 14: the fix for a requirement that cannot resolve is to edit
it, and setup used to put the original line back).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path

import tomlkit
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from scripts import processes
from scripts.app_pyproject import TOOL_TABLE, WRITTEN_KEY, written_by_setup
from scripts.core.errors import MigrateError
from scripts.model.requirement_lines import read_requirement_lines

APP_TEMPLATE = Path(__file__).resolve().parent / "app_template"

# Packages an MLflow model's requirements carry only because Model Serving needed them.
SERVING_ONLY = {
    "cloudpickle": "MLflow records it to unpickle models in Model Serving; the app imports the agent's code "
                   "directly (mlflow still installs it)",
}
# Partial MLflow distributions that duplicate the full `mlflow` the app depends on.
MLFLOW_DUPLICATES = {
    "mlflow-skinny": "a subset of `mlflow`, which the app already depends on",
    "mlflow-tracing": "a subset of `mlflow`, which the app already depends on",
}


@dataclass(frozen=True)
class Decision:
    """What became of one line of the original requirements.txt."""

    requirement: str
    package: str | None
    action: str  # kept | merged | raised | provided | dropped | unsupported | yours
    result: str | None  # the line that goes into pyproject.toml, or None
    reason: str


def scaffold_dependencies() -> dict[str, Requirement]:
    """What the app scaffold's pyproject.toml already depends on, by normalized name."""
    project = tomllib.loads((APP_TEMPLATE / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    found = {}
    for line in project["dependencies"]:
        requirement = Requirement(line)
        found[canonicalize_name(requirement.name)] = requirement
    return found


def with_specifier(requirement: Requirement, specifier: SpecifierSet) -> str:
    """`requirement` with its specifier replaced, extras and markers kept."""
    changed = Requirement(str(requirement))
    changed.specifier = specifier
    return str(changed)


def lowest_allowed(specifier: SpecifierSet) -> Version | None:
    for spec in specifier:
        if spec.operator in (">=", "==", "~=", "==="):
            try:
                return Version(spec.version)
            except ValueError:
                return None
    return None


def decide_provided(requirement: Requirement, floor: Requirement, line: str) -> Decision:
    """A package the scaffold depends on too: the agent's pin wins when the app server can run with it."""
    package = canonicalize_name(requirement.name)
    agent, needed = requirement.specifier, floor.specifier
    if requirement.url:
        return Decision(line, package, "kept", str(requirement), "the agent installs it from a URL")
    if (not agent or agent == needed) and not requirement.extras and not requirement.marker:
        return Decision(line, package, "provided", None, f"the app scaffold already depends on {floor}")
    pins = [spec for spec in agent if spec.operator in ("==", "===")]
    if pins:
        pinned = pins[0].version
        if needed.contains(pinned, prereleases=True):
            return Decision(line, package, "kept", str(requirement), "the agent's pin; the app server works with it")
        return Decision(line, package, "raised", with_specifier(requirement, needed),
                        f"the agent pinned {pinned}; the app server needs {package}{needed}")
    floor_version = lowest_allowed(needed)
    only_lower_bounds = all(spec.operator in (">=", ">") for spec in agent)
    if floor_version is None or agent.contains(floor_version, prereleases=True) or only_lower_bounds:
        return Decision(line, package, "merged", with_specifier(requirement, agent & needed),
                        f"the agent's range combined with the app server's {needed}")
    return Decision(line, package, "raised", with_specifier(requirement, needed),
                    f"the agent's range {agent} excludes {floor_version}, which the app server needs")


def decide_dependencies(lines: list[str], provided: dict[str, Requirement]) -> list[Decision]:
    """One decision per requirement line: keep the agent's packages and pins, raise or drop the rest."""
    decisions: list[Decision] = []
    seen: set[str] = set()
    for read in read_requirement_lines("\n".join(lines)):
        line, requirement = read.line, read.requirement
        if requirement is None:
            decisions.append(Decision(line, None, "unsupported", None, read.reason))
            continue
        package = canonicalize_name(requirement.name)
        if package in seen:
            decisions.append(Decision(line, package, "dropped", None, "listed twice; the first line is used"))
            continue
        seen.add(package)
        if package in SERVING_ONLY:
            decisions.append(Decision(line, package, "dropped", None, SERVING_ONLY[package]))
        elif package in MLFLOW_DUPLICATES:
            decisions.append(Decision(line, package, "dropped", None, MLFLOW_DUPLICATES[package]))
        elif package in provided:
            decisions.append(decide_provided(requirement, provided[package], line))
        else:
            decisions.append(Decision(line, package, "kept", str(requirement), "the agent's own package"))
    return decisions


def merged_dependencies(current: list[str], decisions: list[Decision]) -> list[str]:
    """The app's dependency list after the decisions: entries of other packages (the scaffold's, the user's)
    stay where they are; a kept or merged requirement replaces the entry of its package or is appended.
    A raised one leaves an existing entry alone (it is the scaffold's floor, or the user's own choice)."""
    result = list(current)
    index = {canonicalize_name(Requirement(line).name): position for position, line in enumerate(result)}
    for decision in decisions:
        if decision.result is None or decision.package is None or decision.action == "yours":
            continue
        if decision.action == "raised" and decision.package in index:
            continue
        if decision.package in index:
            result[index[decision.package]] = decision.result
        else:
            index[decision.package] = len(result)
            result.append(decision.result)
    return result


def with_user_edits(decisions: list[Decision], current: list[str], written: dict[str, str]) -> list[Decision]:
    """Decisions where the user changed or removed, since, the line setup wrote for a package: theirs wins."""
    entries = {canonicalize_name(Requirement(line).name): line for line in current}
    result = []
    for decision in decisions:
        before = written.get(decision.package or "")
        if decision.result is None or before is None or entries.get(decision.package) == before:
            result.append(decision)
        elif decision.package in entries:
            result.append(replace(decision, action="yours", result=entries[decision.package],
                                  reason=f"your edit in pyproject.toml (setup wrote {before!r}); kept"))
        else:
            result.append(replace(decision, action="yours", result=None,
                                  reason=f"you removed {before!r} from pyproject.toml; kept out"))
    return result


# --- pyproject.toml -----------------------------------------------------------------------------------------

def read_pyproject(app_dir: Path) -> tuple[str, dict]:
    path = app_dir / "pyproject.toml"
    if not path.is_file():
        raise MigrateError(f"{path} does not exist", "run `migrate scaffold --app-name NAME --force` to restore it")
    text = path.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise MigrateError(f"{path} is not valid TOML: {error}", "fix pyproject.toml, then run `migrate setup` again")
    if not isinstance(data.get("project"), dict):
        raise MigrateError("pyproject.toml has no [project] table", "restore it with `migrate scaffold --force`")
    return text, data


def with_dependencies(text: str, dependencies: list[str], decisions: list[Decision]) -> str:
    """pyproject.toml text with its [project] dependencies replaced and what setup wrote recorded; comments,
    order and every other table as they were."""
    document = tomlkit.parse(text)
    if list(document["project"].get("dependencies", [])) != dependencies:
        array = tomlkit.array()
        array.extend(dependencies)
        array.multiline(True)
        document["project"]["dependencies"] = array
    written = dict(written_by_setup(tomllib.loads(text)))
    for decision in decisions:
        if decision.package and decision.result and decision.action != "yours":
            written[decision.package] = decision.result
    if written:
        tool = document.setdefault("tool", tomlkit.table(is_super_table=True))
        ours = tool.setdefault(TOOL_TABLE, tomlkit.table())
        if dict(ours.get(WRITTEN_KEY, {})) != written:
            recorded = tomlkit.table()
            recorded.comment("the line `migrate setup` wrote per package; a different line is your edit, kept")
            recorded.update(dict(sorted(written.items())))
            ours[WRITTEN_KEY] = recorded
    return tomlkit.dumps(document)


# --- uv lock --------------------------------------------------------------------------------------------------

def packages_named_in(message: str, candidates: list[str]) -> list[str]:
    """The packages a uv resolution error is about: our dependencies it names, else what it calls unknown."""
    named = [name for name in candidates
             if re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", message.replace("_", "-"), re.IGNORECASE)]
    if not named:
        named = re.findall(r"(?:Because|version of|package) `?([A-Za-z0-9][A-Za-z0-9._-]*)", message)
    return sorted(set(named))


def lock(app_dir: Path, dependencies: list[str]) -> str:
    """Run `uv lock` in the app; return uv's summary line. A failure carries uv's own message."""
    argv = [*processes.uv_command(), "lock"]
    try:
        completed = processes.run(argv, cwd=app_dir, env=processes.child_environment(for_app=True))
    except processes.CommandFailed as failed:
        message = failed.output
        names = [canonicalize_name(Requirement(line).name) for line in dependencies]
        packages = packages_named_in(message, names)
        about = f" ({', '.join(packages)})" if packages else ""
        raise MigrateError(
            f"`uv lock` could not resolve the app's dependencies{about}:\n{message}",
            "edit or remove the requirement(s) named above in the app's pyproject.toml `dependencies`, then run "
            "`migrate setup` again: setup keeps your edit (a `yours` decision in its report) instead of the "
            "original line",
            code="SET010")
    lines = [line for line in (completed.stderr + completed.stdout).splitlines() if line.strip()]
    return lines[-1].strip() if lines else "uv lock done"


def locked_version(app_dir: Path, package: str) -> str | None:
    path = app_dir / "uv.lock"
    if not path.is_file():
        return None
    for entry in tomllib.loads(path.read_text(encoding="utf-8")).get("package", []):
        if canonicalize_name(entry.get("name", "")) == package:
            return entry.get("version")
    return None
