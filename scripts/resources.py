"""`migrate resources`: the model's Databricks resources become the app's resources in databricks.yml.

Reads the MLmodel copy in the app (`migration/source/MLmodel`), maps every resource to an app resource with
the least permission that lets the agent do what it did in Model Serving, moves on-behalf-of-user
resources to the app's user authorization (`user_api_scopes`), and edits databricks.yml in place: the
user's comments, order and hand-added resources stay, and a second run changes nothing.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from scripts.core.findings import Finding
from scripts.core import atomic
from scripts.bundle import Bundle, plain, trailer_kept
from scripts import user_scopes
from scripts.core.errors import MigrateError
from scripts.core.layout import MigrationLayout, find_app
from scripts.core.reports import StepReport
from scripts.model.app_resources import (EXPERIMENT_RESOURCE, LAKEBASE_DEFAULT_DATABASE, MAPPINGS, RESOURCE_NAME_MAX,
                                         SourceResource, app_resource_spec, identity, resource_kind, source_resources)
from scripts.model.mlmodel import MLMODEL, UnreadableMLmodel, read_mlmodel

STEP = "resources"
REPO = Path(__file__).resolve().parent.parent
USER_AUTH_HELPER = "agent_server/user_auth.py"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--app", type=Path, help="the app folder (default: the one app folder in --workdir)")


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

def readable_name(label: str, target: str) -> str:
    """`label-<last part of the target's name>`, as a valid resource name."""
    last = re.split(r"[./]", target)[-1]
    slug = re.sub(r"[^a-z0-9]+", "-", f"{label}-{last}".lower()).strip("-")
    return slug[:RESOURCE_NAME_MAX].rstrip("-") or label


def unique_name(base: str, taken: set[str]) -> str:
    name, counter = base, 2
    while name in taken:
        suffix = f"-{counter}"
        name = base[:RESOURCE_NAME_MAX - len(suffix)].rstrip("-") + suffix
        counter += 1
    return name


def base_name(source: SourceResource, kind: str) -> str:
    if source.type in ("sql_warehouse", "genie_space"):
        return MAPPINGS[source.type].label  # their names are opaque ids
    if kind == "postgres":
        return readable_name("postgres", source.name.split("/")[1])
    return readable_name(MAPPINGS[source.type].label, source.name)


# --- editing databricks.yml -----------------------------------------------------------------------------------

def block_map(pairs: list[tuple[str, object]]) -> CommentedMap:
    mapping = CommentedMap()
    for key, value in pairs:
        mapping[key] = value
    return mapping


def ensure_experiment(app: CommentedMap, resources: CommentedSeq) -> bool:
    """The app's `experiment` resource (MLFLOW_EXPERIMENT_ID reads it): re-added if it was removed."""
    if any(isinstance(entry, dict) and resource_kind(entry) == "experiment" for entry in resources):
        return False
    resources.insert(0, block_map([("name", EXPERIMENT_RESOURCE), ("experiment", block_map(
        [("experiment_id", "${var.experiment_id}"), ("permission", "CAN_MANAGE")]))]))
    return True


def add_user_scopes(app: CommentedMap, scopes: list[str]) -> list[str]:
    """Add missing scopes to the app's `user_api_scopes` (the user's own entries stay); return what was added."""
    if not scopes:
        return []
    current = app.get("user_api_scopes")
    if not isinstance(current, list):
        current = CommentedSeq()
        app["user_api_scopes"] = current
    added = [scope for scope in scopes if scope not in current]
    current.extend(added)
    return added


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


def map_resources(layout: MigrationLayout, bundle: Bundle, report: StepReport) -> dict:
    """Apply the mapping to the loaded bundle (not yet saved) and fill the report's findings; the payload."""
    mlmodel = app_mlmodel(layout)
    sources, unreadable, policy_scopes = source_resources(mlmodel)
    key, app = bundle.app_entry()
    app_path = f"{layout.root.name}/databricks.yml"
    resources = app.get("resources")
    if not isinstance(resources, list):
        resources = CommentedSeq()
        app["resources"] = resources
    if ensure_experiment(app, resources):
        report.findings.append(Finding(
            "RES011", "info", app_path, "the app's `experiment` resource was missing and is added again",
            "nothing to do: MLFLOW_EXPERIMENT_ID reads it (`value_from: experiment`)"))
    existing = {}
    for entry in resources:
        if isinstance(entry, dict) and (kind := resource_kind(entry)):
            existing.setdefault(identity(kind, entry.get(kind)), entry)
    taken = {str(entry.get("name")) for entry in resources if isinstance(entry, dict)}

    mapped: list[Mapped] = []
    scopes: list[str] = []
    for source in sources:
        mapping = MAPPINGS.get(source.type)
        if mapping is None:
            mapped.append(Mapped(source, "unmapped", None, None, "no app resource type is known for it"))
            report.findings.append(Finding(
                "RES001", "warning", f"{layout.root.name}/migration/source/MLmodel",
                f"MLmodel resource type {source.type!r} ({source.name}) is unknown to this tool: no app resource "
                "was added for it",
                "grant the app's service principal access to it by hand (an entry under the app's `resources` in "
                "databricks.yml, or in the workspace) and check the agent still reaches it after deploy"))
            continue
        if source.on_behalf_of_user and mapping.user_scope:
            mapped.append(Mapped(source, "user_auth", None, None, f"user scope {mapping.user_scope}"))
            scopes.append(mapping.user_scope)
            continue
        if source.on_behalf_of_user and source.type != "lakebase":
            mapped.append(Mapped(source, "user_auth", None, None, "no known user scope"))
            report.findings.append(Finding(
                "RES009", "warning", app_path,
                f"{source.type} {source.name!r} was used on behalf of the user, and no user API scope is known for it",
                "find the scope that covers it in the Apps UI (Configure → User authorization), add it to "
                "`user_api_scopes`, or grant the resource to the app instead"))
            continue
        kind, spec = app_resource_spec(source)
        note = None
        if source.on_behalf_of_user:  # lakebase
            note = "stays on the app's service principal"
            report.findings.append(Finding(
                "RES006", "warning", app_path,
                f"Lakebase {source.name!r} was used on behalf of the user; Lakebase has no user scope, so the app's "
                "service principal connects to it",
                "make sure the agent's queries do not rely on the caller's database role (row-level rules)"))
        match = existing.get(identity(kind, spec))
        if match is not None:
            current = plain(match.get(kind))
            mapped.append(Mapped(source, "present", str(match.get("name")), {kind: current}, note))
            if str(current.get("permission")) != spec["permission"]:
                report.findings.append(Finding(
                    "RES008", "warning", app_path,
                    f"resource {match.get('name')!r} grants {current.get('permission')}, where the least privilege "
                    f"for the agent is {spec['permission']}: kept as it is",
                    f"set `permission: {spec['permission']}` unless the agent needs more"))
            continue
        name = unique_name(base_name(source, kind), taken)
        taken.add(name)
        resources.append(block_map([("name", name), (kind, block_map(list(spec.items())))]))
        existing[identity(kind, spec)] = resources[-1]
        mapped.append(Mapped(source, "added", name, {kind: spec}, note))
        if source.type == "uc_model_service":
            report.findings.append(Finding(
                "RES002", "warning", app_path,
                f"{name!r} is a uc_securable of type MODEL_SERVICE, which only recent Databricks CLIs know "
                "(bundle schema of databricks-bundles 1.22 and newer)",
                "upgrade the Databricks CLI before `databricks bundle deploy` if validation rejects MODEL_SERVICE"))
        if kind == "database":
            report.findings.append(Finding(
                "RES003", "info", app_path,
                f"{name!r} connects to database {LAKEBASE_DEFAULT_DATABASE!r} of instance {source.name!r} "
                "(MLflow records only the instance)",
                "change `database_name` if the agent uses another database of that instance"))
        if kind == "postgres":
            report.findings.append(Finding(
                "RES004", "warning", app_path,
                f"{source.name!r} looks like an autoscaling Lakebase path, so {name!r} is a `postgres` resource",
                "check `branch` (projects/<p>/branches/<b>) and set `database` (…/databases/<id>) if it is missing"))
        if source.type == "genie_space":
            report.findings.append(Finding(
                "RES007", "info", app_path,
                f"{name!r}: MLflow records only the Genie space id, so the space's `name` is set to its id",
                "replace `name` with the space's title if you want it readable in the Apps UI"))

    for unknown in unreadable:
        report.findings.append(Finding(
            "RES010", "warning", f"{layout.root.name}/migration/source/MLmodel",
            f"MLmodel {unknown.where} could not be mapped: {unknown.reason}",
            "add the app resources it needs to databricks.yml by hand"))

    # user-identity: Serving's auth-policy scope names become Apps names; unknown ones are errors
    policy_apps_scopes, scope_findings = user_scopes.to_apps_scopes(policy_scopes, app_path)
    report.findings += scope_findings
    for scope in policy_apps_scopes:
        if scope not in scopes:
            scopes.append(scope)
    added_scopes = add_user_scopes(app, scopes)
    if scopes:
        report.findings.append(Finding(
            "RES005", "warning", app_path,
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


def map_into_bundle(workdir: Path, app: Path | None) -> StepReport:
    layout = find_app(workdir, app)
    app_dir = layout.root
    report = StepReport(step=STEP, inputs={"app": layout.relative(app_dir)}, layout=layout)
    bundle = Bundle.load(app_dir)  # a malformed file stops here, before anything is written
    _, app_section = bundle.app_entry()
    with trailer_kept(app_section):
        payload = map_resources(layout, bundle, report)
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
        "databricks_yml": "updated" if changed else "unchanged",
    }
    report.outputs = {"bundle": layout.relative(bundle.path)}
    return report


def run(args: argparse.Namespace) -> StepReport:
    report = map_into_bundle(args.workdir, args.app)
    payload = report.payload
    print(f"databricks.yml {payload['databricks_yml']} for app {payload['app_name']}:")
    for entry in payload["mappings"]:
        source = entry["source"]
        target = entry["resource_name"] or entry["note"] or "-"
        print(f"  {entry['status']:<9} {source['type']:<20} {source['name']:<40} -> {target}")
    if payload["user_api_scopes"]:
        print(f"user_api_scopes: {', '.join(payload['user_api_scopes'])}")
    return report
