"""The bundle check (the resources step's check): the app's databricks.yml is deployable and grants what the
agent needs, no more, from the files alone.

databricks.yml parses; its app section validates against `checks/schemas/bundle_app.schema.json`; every
MLmodel resource is there with the right type and at most the least permission (or, used on behalf of the
user, covered by `user_api_scopes`); app resources without a source are flagged; the app name obeys the rules
and is the same everywhere; `source_code_path` exists; the command starts the server; requirements.txt,
pyproject.toml and uv.lock agree; and no token, password or secret value is in a committed file.
"""

from __future__ import annotations

import json
from pathlib import Path

from jsonschema.exceptions import best_match

from checks import secrets
from checks.app_command import command_findings, source_code_findings, workers_findings
from scripts.core.findings import Finding
from scripts.core.schema_registry import validator
from scripts.bundle import BUNDLE_FILE, BundleSyntaxError, find_app_section, parse_bundle_text, plain
from scripts.core.app_names import app_name_problem, bundle_key
from scripts.core.layout import MigrationLayout
from scripts.model.app_resources import (EXPERIMENT_RESOURCE, MAPPINGS, RESOURCE_NAME_MAX, RESOURCE_NAME_PATTERN,
                                         app_resource_spec, identity, resource_kind, source_resources)
from scripts.model.mlmodel import MLMODEL, UnreadableMLmodel, read_mlmodel

# Permissions of each app resource kind, narrowest first: a grant ranked above the mapping's least
# privilege gives the app more than the agent needed in Model Serving.
PERMISSION_ORDER = {
    "serving_endpoint": ["CAN_VIEW", "CAN_QUERY", "CAN_MANAGE"],
    "uc_securable": ["SELECT", "EXECUTE", "USE_CONNECTION", "READ_VOLUME", "MODIFY", "WRITE_VOLUME"],
    "sql_warehouse": ["CAN_USE", "CAN_MANAGE", "IS_OWNER"],
    "genie_space": ["CAN_VIEW", "CAN_RUN", "CAN_EDIT", "CAN_MANAGE"],
    "database": ["CAN_CONNECT_AND_CREATE"],
    "postgres": ["CAN_CONNECT_AND_CREATE"],
    "app": ["CAN_USE"],
}
# Read grants on Unity Catalog securables are all the same level; writes are above them.
READ_LEVEL = {"SELECT", "EXECUTE", "USE_CONNECTION", "READ_VOLUME"}

def check_resources(layout: MigrationLayout) -> list[Finding]:
    app_dir = layout.root
    shown = f"{app_dir.name}/{BUNDLE_FILE}"
    path = app_dir / BUNDLE_FILE
    if not path.is_file():
        return [Finding("RES101", "error", shown, "databricks.yml is missing",
                        "run `migrate scaffold --app-name NAME --force`, then `migrate resources`")]
    try:
        data = parse_bundle_text(path.read_text(encoding="utf-8"))
    except BundleSyntaxError as error:
        where = f"line {error.line}" if error.line else "an unknown line"
        return [Finding("RES101", "error", f"{shown}:{error.line or ''}".rstrip(":"),
                        f"databricks.yml does not parse at {where}: {error.problem}",
                        f"fix the YAML at {where}")]
    key, app, problem = find_app_section(data)
    if problem:
        return [Finding("RES102", "error", shown, problem,
                        "keep exactly one app under `resources.apps`, as `migrate scaffold` wrote it")]
    app = plain(app)
    findings = schema_findings(app, key, shown)
    findings += name_findings(layout, data, key, app, shown)
    findings += resource_findings(layout, app, shown)
    findings += source_code_findings(app_dir, app, shown)
    findings += command_findings(app_dir, app, shown)
    findings += workers_findings(app_dir, app, shown)
    findings += dependency_agreement(layout)
    findings += secret_findings(app_dir)
    return findings


# --- schema ---------------------------------------------------------------------------------------------------

def schema_findings(app: dict, key: str, shown: str) -> list[Finding]:
    findings = []
    for error in sorted(validator("bundle_app").iter_errors(app), key=lambda error: list(error.absolute_path)):
        # `anyOf [value, ${var}]` errors say little; the best sub-error says what is wrong with the value.
        specific = best_match(error.context) if error.context else error
        where = ".".join(str(part) for part in ["resources.apps", key, *error.absolute_path])
        findings.append(Finding("RES103", "error", shown, f"{where}: {specific.message}",
                                "fix the entry to the bundle format (`databricks bundle validate` shows the same)"))
    return findings


# --- app name ---------------------------------------------------------------------------------------------------

def name_findings(layout: MigrationLayout, data: dict, key: str, app: dict, shown: str) -> list[Finding]:
    name = app.get("name")
    if not isinstance(name, str):
        return []  # the schema finding says it
    findings = []
    problem = app_name_problem(name)
    if problem:
        findings.append(Finding("RES109", "error", shown, f"app name {name!r} is not valid: {problem}",
                                "use 2 to 30 lowercase letters, digits and inner hyphens"))
    if key != bundle_key(name):
        findings.append(Finding("RES109", "warning", shown,
                                f"the app's key `{key}` is not its name with underscores (`{bundle_key(name)}`)",
                                f"rename the key to `{bundle_key(name)}` so `databricks bundle run` matches the README"))
    for target, body in (data.get("targets") or {}).items():
        override = (((body or {}).get("resources") or {}).get("apps") or {}).get(key) or {}
        if isinstance(override, dict) and "name" in override and str(override["name"]) != name:
            findings.append(Finding("RES109", "error", shown,
                                    f"target {target!r} renames the app to {override['name']!r}, not {name!r}",
                                    "use the same app name in every target (or remove the override)"))
    scaffolded = layout.report_path("scaffold")
    if scaffolded.is_file():
        recorded = json.loads(scaffolded.read_text(encoding="utf-8")).get("payload", {}).get("app_name")
        if recorded and recorded != name:
            findings.append(Finding("RES109", "error", shown,
                                    f"the app is named {name!r} here but was scaffolded as {recorded!r}",
                                    f"set `name: {recorded}` or scaffold a new app with that name"))
    return findings


# --- resources ----------------------------------------------------------------------------------------------------

def too_wide(kind: str, granted: str, least: str) -> bool:
    order = PERMISSION_ORDER.get(kind, [])
    if kind == "uc_securable" and granted in READ_LEVEL and least in READ_LEVEL:
        return False
    if granted not in order or least not in order:
        return False
    return order.index(granted) > order.index(least)


def resource_findings(layout: MigrationLayout, app: dict, shown: str) -> list[Finding]:
    entries = [entry for entry in app.get("resources") or [] if isinstance(entry, dict)]
    findings = resource_name_findings(entries, shown)
    try:
        sources, unreadable, policy_scopes = source_resources(read_mlmodel(layout.source / MLMODEL))
    except UnreadableMLmodel as error:
        where = f"{layout.root.name}/migration/source/{MLMODEL}" + (f":{error.line}" if error.line else "")
        return findings + [Finding("RES104", "error", where, f"the app's MLmodel copy is {error.problem}",
                                   "run `migrate scaffold --app-name NAME --force` in the working directory to "
                                   "restore migration/source/")]
    scopes = app.get("user_api_scopes") if isinstance(app.get("user_api_scopes"), list) else []
    expected, granted = source_findings(sources, entries, scopes, shown)
    findings += granted
    for scope in policy_scopes:
        if scope not in scopes:
            findings.append(Finding("RES106", "error", shown,
                                    f"MLmodel's user auth policy needs scope {scope!r}, missing from `user_api_scopes`",
                                    "run `migrate resources`, or add the scope to `user_api_scopes`"))
    for entry in entries:
        kind = resource_kind(entry)
        if kind is None or kind == "experiment" or identity(kind, entry.get(kind)) in expected:
            continue  # a kindless entry is a schema finding already
        findings.append(Finding(
            "RES108", "warning", shown,
            f"app resource {entry.get('name')!r} comes from no MLmodel resource",
            "keep it if you added it on purpose (the agent needs it in Apps); otherwise remove it"))
    findings += experiment_findings(app, entries, shown)
    return findings


def resource_name_findings(entries: list[dict], shown: str) -> list[Finding]:
    findings = []
    names = [str(entry.get("name")) for entry in entries]
    for name in sorted({name for name in names if names.count(name) > 1}):
        findings.append(Finding("RES115", "error", shown, f"two app resources are named {name!r}",
                                "give each resource its own name (`value_from` and the Apps UI refer to it)"))
    for name in names:
        if not RESOURCE_NAME_PATTERN.match(name) or len(name) > RESOURCE_NAME_MAX:
            findings.append(Finding("RES115", "warning", shown, f"resource name {name!r} is hard to read or use",
                                    f"use lowercase letters, digits and hyphens, at most {RESOURCE_NAME_MAX} characters"))
    return findings


def source_findings(sources: list, entries: list[dict], scopes: list, shown: str) -> tuple[set, list[Finding]]:
    """Every MLmodel resource is granted (at most with least privilege) or covered by a user scope; returns what
    the grants are expected to be, and the findings."""
    present = {}
    for entry in entries:
        if kind := resource_kind(entry):
            present.setdefault(identity(kind, entry.get(kind)), entry)
    expected, findings = set(), []
    for source in sources:
        mapping = MAPPINGS.get(source.type)
        if mapping is None:
            findings.append(Finding("RES107", "warning", shown,
                                    f"MLmodel resource {source.type} {source.name!r} has no known app resource type",
                                    "grant the app access to it by hand and check the agent reaches it after deploy"))
            continue
        if source.on_behalf_of_user and source.type != "lakebase":
            if mapping.user_scope and mapping.user_scope not in scopes:
                findings.append(Finding(
                    "RES106", "error", shown,
                    f"{source.type} {source.name!r} is used on behalf of the user, but `user_api_scopes` lacks "
                    f"{mapping.user_scope!r}", "run `migrate resources`, or add the scope to `user_api_scopes`"))
            continue
        kind, spec = app_resource_spec(source)
        expected.add(identity(kind, spec))
        entry = present.get(identity(kind, spec))
        if entry is None:
            findings.append(Finding(
                "RES104", "error", shown,
                f"MLmodel resource {source.type} {source.name!r} has no `{kind}` app resource",
                "run `migrate resources` (it adds it), or add the entry by hand"))
            continue
        granted = str((entry.get(kind) or {}).get("permission"))
        if too_wide(kind, granted, spec["permission"]):
            # Writing to a table is a legitimate need the MLmodel cannot express: a warning, not an error.
            legitimate = source.type == "table" and granted == "MODIFY"
            findings.append(Finding(
                "RES105", "warning" if legitimate else "error", shown,
                f"resource {entry.get('name')!r} grants {granted} on {source.name!r}; the agent needs {spec['permission']}",
                f"set `permission: {spec['permission']}`" + (" unless the agent writes to the table" if legitimate else "")))
    return expected, findings


def experiment_findings(app: dict, entries: list[dict], shown: str) -> list[Finding]:
    findings = []
    names = {str(entry.get("name")) for entry in entries}
    if not any(resource_kind(entry) == "experiment" for entry in entries):
        findings.append(Finding("RES114", "error", shown, "the app has no `experiment` resource: traces have nowhere to go",
                                "run `migrate resources` (it adds it back)"))
    for variable in ((app.get("config") or {}).get("env") or []):
        if isinstance(variable, dict) and "value_from" in variable and str(variable["value_from"]) not in names:
            findings.append(Finding(
                "RES114", "error", shown,
                f"env {variable.get('name')!r} reads `value_from: {variable['value_from']}`, which is no resource's name",
                f"name an existing resource (the experiment is `{EXPERIMENT_RESOURCE}`)"))
    return findings


def dependency_agreement(layout: MigrationLayout) -> list[Finding]:
    """requirements.txt / pyproject.toml / uv.lock agreement. The setup check reports it under its own codes
    when the setup step ran; here only when it did not, so `migrate check` never says the same thing twice."""
    from checks.setup import dependency_findings

    if layout.report_path("setup").is_file():
        return []
    return [Finding("RES112", finding.severity, finding.path, finding.message, finding.fix)
            for finding in dependency_findings(layout.root)]


# --- secrets ------------------------------------------------------------------------------------------------------

def secret_findings(app_dir: Path) -> list[Finding]:
    """Secrets outside the migrated code (the code check reports those in agent_server/ as COD019)."""
    return [Finding("RES113", "error", f"{app_dir.name}/{hit.relative}" + (f":{hit.line}" if hit.line else ""),
                    f"{hit.what} in a file that would be committed and deployed",
                    "remove it; keep secrets in a `secret` app resource (read with `value_from`) or in .env for "
                    "local runs, and rotate the credential if it was ever pushed")
            for hit in secrets.scan(app_dir) if not hit.in_code]
