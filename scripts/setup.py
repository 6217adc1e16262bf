"""`migrate setup`: make the app installable and runnable the way Databricks Apps runs it.

In order: decide what becomes of each line of the original `requirements.txt`, find or create the MLflow
experiment (when a workspace is configured), write the dependencies into `pyproject.toml`, make sure the
README and a `requirements.txt` holding only `uv` exist, run `uv lock`, fill `.env` from `.env.example`
without touching what the user set, and put the experiment id into `databricks.yml`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import tomllib
from dataclasses import asdict, dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from checks.findings import Finding
from scripts import atomic
from scripts.bundle import Bundle, set_experiment_default
from scripts.errors import MigrateError
from scripts.layout import find_app
from scripts.reports import StepReport, write_report
from scripts.requirements import read_requirement_lines
from scripts.uv_tool import app_environment, uv_command

STEP = "setup"
APP_TEMPLATE = Path(__file__).resolve().parent / "app_template"
SOURCE_REQUIREMENTS = "requirements.txt"

# Databricks Apps installs with pip from a requirements.txt that lists packages and then ignores uv.lock;
# one that holds only `uv` makes it install from pyproject.toml + uv.lock (ARCHITECTURE §6).
APP_REQUIREMENTS_TEXT = "uv\n"

# The first MLflow release with `mlflow.genai.agent_server`, which the app server is built on.
MLFLOW_FLOOR = Version("3.17")

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

ENV_FILE = ".env"
ENV_EXAMPLE = ".env.example"
EXPERIMENT_KEY = "MLFLOW_EXPERIMENT_ID"
PROFILE_KEY = "DATABRICKS_CONFIG_PROFILE"
# How long the SDK keeps retrying an unreachable workspace before setup gives up.
WORKSPACE_RETRY_SECONDS = 30


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--app", type=Path, help="the app folder (default: the one app folder in --workdir)")
    parser.add_argument("--profile",
                        help="Databricks CLI profile of the workspace where the MLflow experiment is created "
                             "(default: DATABRICKS_HOST/DATABRICKS_TOKEN from the environment, if set)")
    parser.add_argument("--force", action="store_true",
                        help="replace an app requirements.txt that lists packages with one holding only `uv`")


# --- dependency decisions ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Decision:
    """What became of one line of the original requirements.txt."""

    requirement: str
    package: str | None
    action: str  # kept | merged | raised | provided | dropped | unsupported
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
        if decision.result is None or decision.package is None:
            continue
        if decision.action == "raised" and decision.package in index:
            continue
        if decision.package in index:
            result[index[decision.package]] = decision.result
        else:
            index[decision.package] = len(result)
            result.append(decision.result)
    return result


# --- pyproject.toml -----------------------------------------------------------------------------------------

DEPENDENCIES_BLOCK = re.compile(r"^dependencies\s*=\s*\[.*?^\]", re.MULTILINE | re.DOTALL)


def read_pyproject(app_dir: Path) -> tuple[str, dict]:
    path = app_dir / "pyproject.toml"
    if not path.is_file():
        raise MigrateError(f"{path} does not exist", "run `migrate scaffold --app-name NAME --force` to restore it")
    text = path.read_text(encoding="utf-8")
    try:
        return text, tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise MigrateError(f"{path} is not valid TOML: {error}", "fix pyproject.toml, then run `migrate setup` again")


def render_dependencies(dependencies: list[str]) -> str:
    # JSON string literals are valid TOML basic strings for requirement text (quotes and backslashes escaped).
    lines = "".join(f"    {json.dumps(line)},\n" for line in dependencies)
    return f"dependencies = [\n{lines}]"


def with_dependencies(text: str, dependencies: list[str]) -> str:
    """pyproject.toml text with its [project] dependencies array replaced and everything else as it was."""
    project_start = re.search(r"^\[project\]\s*$", text, re.MULTILINE)
    if project_start is None:
        raise MigrateError("pyproject.toml has no [project] table", "restore it with `migrate scaffold --force`")
    next_table = re.search(r"^\[", text[project_start.end():], re.MULTILINE)
    end = project_start.end() + next_table.start() if next_table else len(text)
    section = text[project_start.end():end]
    block = DEPENDENCIES_BLOCK.search(section)
    if block:
        section = section[:block.start()] + render_dependencies(dependencies) + section[block.end():]
    else:
        section = section.rstrip("\n") + "\n" + render_dependencies(dependencies) + "\n\n"
    updated = text[:project_start.end()] + section + text[end:]
    if tomllib.loads(updated)["project"].get("dependencies") != dependencies:
        raise MigrateError("could not rewrite the dependencies array of pyproject.toml (unusual formatting)",
                           "write `dependencies = [...]` as a multi-line array in [project], then run setup again")
    return updated


# --- files the app needs --------------------------------------------------------------------------------------

def ensure_readme(app_dir: Path, project: dict, app_name: str) -> tuple[str, str]:
    """hatchling refuses to build without the README that pyproject.toml names."""
    readme = project.get("readme", "README.md")
    relative = readme if isinstance(readme, str) else readme.get("file", "README.md")
    path = app_dir / relative
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


# --- uv lock --------------------------------------------------------------------------------------------------

def run_in_own_group(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """Run a command in its own process group; on Ctrl-C or any error the whole group is stopped."""
    environment = app_environment()
    process = subprocess.Popen(argv, cwd=cwd, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
    try:
        stdout, stderr = process.communicate()
    except BaseException:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        process.wait()
        raise
    return subprocess.CompletedProcess(argv, process.returncode, stdout, stderr)


def packages_named_in(message: str, candidates: list[str]) -> list[str]:
    """The packages a uv resolution error is about: our dependencies it names, else what it calls unknown."""
    named = [name for name in candidates
             if re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", message.replace("_", "-"), re.IGNORECASE)]
    if not named:
        named = re.findall(r"(?:Because|version of|package) `?([A-Za-z0-9][A-Za-z0-9._-]*)", message)
    return sorted(set(named))


def lock(app_dir: Path, dependencies: list[str]) -> str:
    """Run `uv lock` in the app; return uv's summary line. A failure carries uv's own message."""
    argv = [*uv_command(), "lock"]
    completed = run_in_own_group(argv, app_dir)
    if completed.returncode != 0:
        message = (completed.stderr or completed.stdout).strip()
        names = [canonicalize_name(Requirement(line).name) for line in dependencies]
        packages = packages_named_in(message, names)
        about = f" ({', '.join(packages)})" if packages else ""
        raise MigrateError(
            f"`uv lock` could not resolve the app's dependencies{about}:\n{message}",
            "change the requirement(s) named above in the app's pyproject.toml (or pass a version that exists), "
            "then run `migrate setup` again",
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


# --- .env -----------------------------------------------------------------------------------------------------

ENV_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")


def env_values(text: str) -> dict[str, str]:
    values = {}
    for line in text.splitlines():
        match = ENV_LINE.match(line)
        if match and not line.lstrip().startswith("#"):
            values[match.group(1)] = match.group(2).strip("'\"")
    return values


def merged_env(example: str, current: str | None, wanted: dict[str, str]) -> tuple[str, dict[str, str]]:
    """.env text and what happened to each key.

    A value the user set is one that is non-empty and differs from .env.example's: it is never replaced.
    Keys of .env.example missing from .env are added; lines the user added are kept as they are.
    """
    defaults = env_values(example)
    created = current is None
    if created:
        current = example
    lines = current.splitlines()
    present = env_values(current)
    actions: dict[str, str] = {}
    for key, value in {**defaults, **wanted}.items():
        if key not in present:
            lines.append(f"{key}={value}")
            actions[key] = "added"
            continue
        mine = present[key]
        if mine and mine != defaults.get(key, ""):
            actions[key] = "kept"
        elif key in wanted and mine != value:
            lines = [f"{key}={value}" if (ENV_LINE.match(line) and ENV_LINE.match(line).group(1) == key
                                          and not line.lstrip().startswith("#")) else line for line in lines]
            actions[key] = "filled"
        else:
            actions[key] = "added" if created else "unchanged"
    return "\n".join(lines) + "\n", actions


def ensure_env_ignored(app_dir: Path) -> bool:
    """Add `.env` to .gitignore when it is not there; True when it was added."""
    path = app_dir / ".gitignore"
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if ENV_FILE in text.split():
        return False
    atomic.write_text(path, text + ("" if not text or text.endswith("\n") else "\n") + f"{ENV_FILE}\n")
    return True


# --- the MLflow experiment ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Experiment:
    name: str | None
    experiment_id: str | None
    status: str  # created | reused | not_configured


def workspace_configured(profile: str | None) -> bool:
    return bool(profile or os.environ.get("DATABRICKS_HOST") or os.environ.get("DATABRICKS_CONFIG_PROFILE"))


def find_or_create_experiment(profile: str | None, app_name: str) -> Experiment:
    """`/Users/<me>/<app-name>`, reused when it exists (so re-running setup creates nothing new)."""
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.core import Config
    from databricks.sdk.errors import DatabricksError, NotFound
    from requests.exceptions import RequestException

    where = f"profile {profile!r}" if profile else "DATABRICKS_HOST"
    try:
        client = WorkspaceClient(config=Config(profile=profile, retry_timeout_seconds=WORKSPACE_RETRY_SECONDS))
        me = client.current_user.me().user_name
        name = f"/Users/{me}/{app_name}"
        try:
            found = client.experiments.get_by_name(name).experiment
            if found is not None and found.experiment_id:
                return Experiment(name, found.experiment_id, "reused")
        except NotFound:
            pass
        return Experiment(name, client.experiments.create_experiment(name=name).experiment_id, "created")
    except (DatabricksError, RequestException, ValueError, TimeoutError) as error:
        raise MigrateError(f"could not create the MLflow experiment in the workspace ({where}): {error}",
                           "check the workspace URL and credentials (`databricks auth login`), or unset "
                           "DATABRICKS_HOST and run `migrate setup` without --profile to skip the experiment",
                           code="SET012") from None


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
    report = StepReport(step=STEP, inputs={"app": layout.relative(app_dir), "profile": profile, "force": force})
    bundle = Bundle.load(app_dir)
    app_name = app_name_of(bundle)
    files: dict[str, str] = {}

    # 1. What becomes of each original requirement.
    source = layout.source / SOURCE_REQUIREMENTS
    if source.is_file():
        decisions = decide_dependencies(source.read_text(encoding="utf-8").splitlines(), scaffold_dependencies())
    else:
        decisions = []
        report.findings.append(Finding(
            "SET001", "warning", layout.relative(source),
            "the original model's requirements.txt is not in the app: only the scaffold's dependencies are used",
            "add the agent's packages to pyproject.toml by hand, or re-run `migrate scaffold --force` to carry "
            "migration/source/ in, then run `migrate setup` again"))
    for decision in decisions:
        if decision.action == "unsupported":
            report.findings.append(Finding(
                "SET002", "warning", layout.relative(source),
                f"not carried into pyproject.toml: {decision.requirement!r} ({decision.reason})",
                "add the package to pyproject.toml `dependencies` by hand if the agent needs it"))

    # 2. The experiment first: a workspace problem stops the step before any file changes.
    if workspace_configured(profile):
        experiment = find_or_create_experiment(profile, app_name)
    else:
        experiment = Experiment(None, None, "not_configured")
        report.findings.append(Finding(
            "SET004", "warning", f"{app_dir.name}/{ENV_FILE}",
            "no workspace configured: the MLflow experiment was not created and MLFLOW_EXPERIMENT_ID is empty",
            "run `migrate setup --profile PROFILE` (or with DATABRICKS_HOST and DATABRICKS_TOKEN set) once the "
            "workspace is reachable; it creates /Users/<you>/" + app_name + " and fills in its id"))

    # 3. pyproject.toml, README, requirements.txt.
    text, pyproject = read_pyproject(app_dir)
    dependencies = merged_dependencies(pyproject["project"].get("dependencies", []), decisions)
    updated = with_dependencies(text, dependencies)
    files["pyproject.toml"] = "unchanged" if updated == text else "updated"
    if updated != text:
        atomic.write_text(app_dir / "pyproject.toml", updated)
    readme, files_readme = ensure_readme(app_dir, pyproject["project"], app_name)
    files[readme] = files_readme
    files["requirements.txt"] = ensure_requirements_txt(app_dir, force)

    # 4. uv.lock, matching pyproject.toml.
    lock_before = (app_dir / "uv.lock").read_bytes() if (app_dir / "uv.lock").exists() else None
    uv_summary = lock(app_dir, dependencies)
    lock_after = (app_dir / "uv.lock").read_bytes()
    files["uv.lock"] = "created" if lock_before is None else ("unchanged" if lock_before == lock_after else "updated")

    # 5. .env from .env.example, and kept out of git.
    example_path = app_dir / ENV_EXAMPLE
    example = example_path.read_text(encoding="utf-8") if example_path.is_file() else ""
    env_path = app_dir / ENV_FILE
    current = env_path.read_text(encoding="utf-8") if env_path.exists() else None
    wanted = {}
    if experiment.experiment_id:
        wanted[EXPERIMENT_KEY] = experiment.experiment_id
    if profile:
        wanted[PROFILE_KEY] = profile
    env_text, env_actions = merged_env(example, current, wanted)
    files[ENV_FILE] = "created" if current is None else ("unchanged" if env_text == current else "updated")
    if env_text != current:
        atomic.write_text(env_path, env_text)
    for key, value in wanted.items():
        if env_actions.get(key) == "kept":
            report.findings.append(Finding(
                "SET005", "warning", f"{app_dir.name}/{ENV_FILE}",
                f"{key} in .env keeps your value, not {value!r} from this setup",
                f"nothing to do if your value is intended; otherwise set {key}={value} in .env"))
    if ensure_env_ignored(app_dir):
        files[".gitignore"] = "updated"

    # 6. databricks.yml: the experiment the app's `experiment` resource points at.
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
                      "env": layout.relative(env_path)}
    write_report(layout, report)
    return report


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
