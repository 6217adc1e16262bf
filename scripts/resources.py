"""`migrate resources`: the model's Databricks resources become the app's resources in databricks.yml.

Reads the MLmodel copy in the app (`migration/source/MLmodel`), maps every resource to an app resource with
the least permission that lets the agent do what it did in Model Serving, moves on-behalf-of-user
resources to the app's user authorization (`user_api_scopes`), and edits databricks.yml in place: the
user's comments, order and hand-added resources stay, and a second run changes nothing.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass
from pathlib import Path

from checks.app_command import process_memory_state, server_workers as workers_in_command
from scripts import user_scopes
from scripts.bundle import BUNDLE_FILE, Bundle, plain, trailer_kept
from scripts.core import atomic
from scripts.core.errors import MigrateError
from scripts.core.findings import Finding
from scripts.core.layout import MigrationLayout, find_app
from scripts.core.reports import StepReport, read_report
from scripts.model.app_resources import (LAKEBASE_DEFAULT_DATABASE, MAPPINGS, SourceResource, app_resource_spec,
                                         source_resources)
from scripts.model.mlmodel import MLMODEL, UnreadableMLmodel, read_mlmodel
from scripts.resources_bundle import AppResources, add_user_scopes, set_server_workers

STEP = "resources"
REPO = Path(__file__).resolve().parent.parent
USER_AUTH_HELPER = "agent_server/user_auth.py"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--app", type=Path, help="the app folder (default: the one app folder in --workdir)")
    parser.add_argument("--workers", type=int, metavar="N",
                        help="server processes the app runs (`start-server --workers N` in the app's command); "
                             "default: keep what databricks.yml says, else one per vCPU of the compute size (2 on "
                             "Medium) for an agent that keeps no state in process memory, else 1 (RES040)")


# --- reading the MLmodel ----------------------------------------------------------------------------------------

def app_mlmodel(layout: MigrationLayout) -> dict:
    """The MLmodel copy the app carries (`migration/source/MLmodel`)."""
    path = layout.source / MLMODEL
    try:
        return read_mlmodel(path)
    except UnreadableMLmodel as error:
        where = layout.relative(path) + (f":{error.line}" if error.line else "")
        raise MigrateError(f"{where}: {error.problem}",
                           "run `migrate scaffold --app-name NAME --force` in the working directory to carry "
                           "migration/source/ into the app (after `migrate download --force` if the download's "
                           "own MLmodel is broken)", code="RES020") from None


# --- mapping --------------------------------------------------------------------------------------------------

@dataclass
class Mapped:
    source: SourceResource
    status: str  # added | present | user_auth | unmapped
    resource_name: str | None
    app_resource: dict | None
    note: str | None = None

    def to_dict(self) -> dict:
        return {"source": asdict(self.source), "status": self.status, "resource_name": self.resource_name,
                "app_resource": self.app_resource, "note": self.note}


def map_source(source: SourceResource, resources: AppResources, shown: str) -> tuple[Mapped, list[Finding]]:
    """What becomes of one MLmodel resource: an app resource (added, or one already granting it), a user scope
    (on behalf of the user), or nothing (a type no app resource is known for)."""
    mapping = MAPPINGS.get(source.type)
    if mapping is None:
        return Mapped(source, "unmapped", None, None, "no app resource type is known for it"), [Finding(
            "RES001", "warning", shown.replace(BUNDLE_FILE, f"migration/source/{MLMODEL}"),
            f"MLmodel resource type {source.type!r} ({source.name}) is unknown to this tool: no app resource "
            "was added for it",
            "grant the app's service principal access to it by hand (an entry under the app's `resources` in "
            "databricks.yml, or in the workspace) and check the agent still reaches it after deploy")]
    if source.on_behalf_of_user and mapping.user_scope:
        return Mapped(source, "user_auth", None, None, f"user scope {mapping.user_scope}"), []
    if source.on_behalf_of_user and source.type != "lakebase":
        return Mapped(source, "user_auth", None, None, "no known user scope"), [Finding(
            "RES009", "warning", shown,
            f"{source.type} {source.name!r} was used on behalf of the user, and no user API scope is known for it",
            "find the scope that covers it in the Apps UI (Configure → User authorization), add it to "
            "`user_api_scopes`, or grant the resource to the app instead")]
    kind, spec = app_resource_spec(source)
    findings, note = [], None
    if source.on_behalf_of_user:  # lakebase
        note = "stays on the app's service principal"
        findings.append(Finding(
            "RES006", "warning", shown,
            f"Lakebase {source.name!r} was used on behalf of the user; Lakebase has no user scope, so the app's "
            "service principal connects to it",
            "make sure the agent's queries do not rely on the caller's database role (row-level rules)"))
    match = resources.granting(kind, spec)
    if match is None:
        name = resources.add(source, kind, spec)
        return Mapped(source, "added", name, {kind: spec}, note), findings + added_notes(source, kind, name, shown)
    current = plain(match.get(kind))
    if str(current.get("permission")) != spec["permission"]:
        findings.append(Finding(
            "RES008", "warning", shown,
            f"resource {match.get('name')!r} grants {current.get('permission')}, where the least privilege "
            f"for the agent is {spec['permission']}: kept as it is",
            f"set `permission: {spec['permission']}` unless the agent needs more"))
    return Mapped(source, "present", str(match.get("name")), {kind: current}, note), findings


def added_notes(source: SourceResource, kind: str, name: str, shown: str) -> list[Finding]:
    """What the user should know of an app resource just added: what MLflow did not record, what needs a newer CLI."""
    notes = []
    if source.type == "uc_model_service":
        notes.append(Finding(
            "RES002", "warning", shown,
            f"{name!r} is a uc_securable of type MODEL_SERVICE, which only recent Databricks CLIs know "
            "(bundle schema of databricks-bundles 1.22 and newer)",
            "upgrade the Databricks CLI before `databricks bundle deploy` if validation rejects MODEL_SERVICE"))
    if kind == "database":
        notes.append(Finding(
            "RES003", "info", shown,
            f"{name!r} connects to database {LAKEBASE_DEFAULT_DATABASE!r} of instance {source.name!r} "
            "(MLflow records only the instance)",
            "change `database_name` if the agent uses another database of that instance"))
    if kind == "postgres":
        notes.append(Finding(
            "RES004", "warning", shown,
            f"{source.name!r} looks like an autoscaling Lakebase path, so {name!r} is a `postgres` resource",
            "check `branch` (projects/<p>/branches/<b>) and set `database` (…/databases/<id>) if it is missing"))
    if source.type == "genie_space":
        notes.append(Finding(
            "RES007", "info", shown,
            f"{name!r}: MLflow records only the Genie space id, so the space's `name` is set to its id",
            "replace `name` with the space's title if you want it readable in the Apps UI"))
    return notes


def candidate_scopes(mapped: list[Mapped], policy_scopes: list[str], shown: str) -> tuple[list[str], list[Finding]]:
    """The user scopes the app needs: those of on-behalf-of-user resources, then the user auth policy's, in
    Apps' names (user-identity: Serving's names are mapped, unknown ones are errors)."""
    of_resources = [MAPPINGS[entry.source.type].user_scope for entry in mapped if entry.status == "user_auth"]
    policy_apps_scopes, findings = user_scopes.to_apps_scopes(policy_scopes, shown)
    return list(dict.fromkeys(scope for scope in of_resources + policy_apps_scopes if scope)), findings


def map_resources(layout: MigrationLayout, bundle: Bundle, report: StepReport) -> dict:
    """Apply the mapping to the loaded bundle (not yet saved) and fill the report's findings; the payload."""
    sources, unreadable, policy_scopes = source_resources(app_mlmodel(layout))
    key, app = bundle.app_entry()
    shown = f"{layout.root.name}/{BUNDLE_FILE}"
    resources = AppResources(app)
    if resources.ensure_experiment():
        report.findings.append(Finding(
            "RES011", "info", shown, "the app's `experiment` resource was missing and is added again",
            "nothing to do: MLFLOW_EXPERIMENT_ID reads it (`value_from: experiment`)"))
    mapped: list[Mapped] = []
    for source in sources:
        entry, findings = map_source(source, resources, shown)
        mapped.append(entry)
        report.findings += findings
    for unknown in unreadable:
        report.findings.append(Finding(
            "RES010", "warning", f"{layout.root.name}/migration/source/{MLMODEL}",
            f"MLmodel {unknown.where} could not be mapped: {unknown.reason}",
            "add the app resources it needs to databricks.yml by hand"))
    scopes, scope_findings = candidate_scopes(mapped, policy_scopes, shown)
    report.findings += scope_findings
    added_scopes = add_user_scopes(app, scopes)
    if scopes:
        report.findings.append(Finding(
            "RES005", "warning", shown,
            f"user_api_scopes {', '.join(scopes)} are candidates from MLflow's user auth policy and on-behalf-of-user "
            "resources; scope names differ between MLflow and Apps and change over time",
            "after `databricks bundle deploy`, compare them with the app's `effective_user_api_scopes` "
            "(`databricks apps get NAME`) and fix the list in databricks.yml"))
    return {
        "bundle_key": key,
        "mappings": [entry.to_dict() for entry in mapped],
        "user_api_scopes": scopes,
        "user_api_scopes_added": added_scopes,
        "user_auth": [asdict(entry.source) for entry in mapped if entry.status == "user_auth"],
    }


def ensure_user_auth_helper(app_dir: Path) -> str:
    """The scaffold's helper for the forwarded user token, put in place when an older scaffold lacks it."""
    target = app_dir / USER_AUTH_HELPER
    if target.is_file():
        return "present"
    atomic.write_text(target, (REPO / USER_AUTH_HELPER).read_text(encoding="utf-8"))
    return "created"


def serving_credentials_in_code(app_dir: Path) -> list[str]:
    """Agent files still using Model Serving's user credentials, which do not work in Apps."""
    # user-identity: read from the code (checks/user_credentials.py), so a docstring that tells the story is no use
    from checks.user_credentials import user_credential_findings

    return sorted({finding.path.split("/", 1)[1].rsplit(":", 1)[0] for finding in user_credential_findings(app_dir)}
                  - {USER_AUTH_HELPER})


# vCPUs of each Apps compute size (ARCHITECTURE.md §8); an unknown size counts as the default, Medium.
COMPUTE_VCPUS = {"MEDIUM": 2, "LARGE": 4}


def chosen_workers(layout: MigrationLayout, app_section, given: int | None) -> dict:
    """How many server processes the app runs: --workers when given; else what its command already says;
    else one per vCPU of its compute size (two on Medium: one worker per core served 21-23% more requests a
    second than one process in benchmarks/README.md), unless the agent keeps state in process memory, where
    each process would hold its own copy (RES040)."""
    if given is not None:
        return {"count": given, "chosen": "given", "reason": "--workers"}
    command = [str(part) for part in ((app_section.get("config") or {}).get("command") or [])]
    if any(part == "--workers" or part.startswith("--workers=") for part in command):
        return {"count": workers_in_command(command), "chosen": "kept", "reason": "the app's command sets it"}
    try:
        analysis = read_report(layout, "analyze")
    except MigrateError:
        analysis = None  # the check of analyze says what is wrong with it
    if analysis is None:
        return {"count": 1, "chosen": "default", "reason": "one process: without the analysis (migration/reports/"
                "analyze.json) nothing says the agent keeps no state in process memory"}
    state = process_memory_state(analysis)
    if state:
        return {"count": 1, "chosen": "default",
                "reason": f"one process: the agent keeps state in process memory ({'; '.join(state[:2])})"}
    size = str(app_section.get("compute_size") or "MEDIUM").upper()
    count = COMPUTE_VCPUS.get(size, COMPUTE_VCPUS["MEDIUM"])
    return {"count": count, "chosen": "default",
            "reason": f"one per vCPU of compute size {size}; the agent keeps no state in process memory"}


def map_into_bundle(workdir: Path, app: Path | None, workers: int | None = None) -> StepReport:
    layout = find_app(workdir, app)
    app_dir = layout.root
    report = StepReport(step=STEP, inputs={"app": layout.relative(app_dir)}, layout=layout)
    if workers is not None and workers < 1:
        raise MigrateError(f"--workers {workers}: an app runs at least one server process", "pass --workers 1 or more")
    bundle = Bundle.load(app_dir)  # a malformed file stops here, before anything is written
    _, app_section = bundle.app_entry()
    with trailer_kept(app_section):
        payload = map_resources(layout, bundle, report)
        server_workers = chosen_workers(layout, app_section, workers)
        # A default of one process leaves the command as it is, so a later run (with the analysis) may still
        # choose; a count given with --workers is written, 1 included, and kept from then on.
        if server_workers["chosen"] == "given" or (server_workers["chosen"] == "default"
                                                   and server_workers["count"] > 1):
            set_server_workers(app_section, server_workers["count"])
    changed = bundle.save()
    helper = None
    if payload["user_auth"] or payload["user_api_scopes"]:
        helper = ensure_user_auth_helper(app_dir)
        for path in serving_credentials_in_code(app_dir):
            report.findings.append(Finding(
                "RES012", "error", f"{app_dir.name}/{path}",
                "uses ModelServingUserCredentials, which only works inside Model Serving",
                "build the user's client with `agent_server.user_auth.user_workspace_client()` per request"))
    report.payload = {
        "app_name": str(app_section.get("name")),
        **payload,
        "user_auth_helper": {"path": USER_AUTH_HELPER, "action": helper} if helper else None,
        "server_workers": server_workers,
        "databricks_yml": "updated" if changed else "unchanged",
    }
    report.outputs = {"bundle": layout.relative(bundle.path)}
    return report


def run(args: argparse.Namespace) -> StepReport:
    report = map_into_bundle(args.workdir, args.app, getattr(args, "workers", None))
    payload = report.payload
    print(f"databricks.yml {payload['databricks_yml']} for app {payload['app_name']}:")
    for entry in payload["mappings"]:
        source = entry["source"]
        target = entry["resource_name"] or entry["note"] or "-"
        print(f"  {entry['status']:<9} {source['type']:<20} {source['name']:<40} -> {target}")
    if payload["user_api_scopes"]:
        print(f"user_api_scopes: {', '.join(payload['user_api_scopes'])}")
    workers = payload["server_workers"]
    print(f"server processes: {workers['count']} ({workers['chosen']}: {workers['reason']})")
    return report
