"""The analyze check: the report still describes the model it claims to, re-derived from the files.

With the download at hand (`original_mlflow_model/`), the analysis runs again and its key facts are compared
with the report. From an app folder alone (a reviewer's pull request), the facts that the carried source
copies hold are compared instead: the MLmodel copy (model kind, entry file, task, artifacts, resources, auth
policy), requirements.txt, the input example, and the manifest's hashes of the analysed Python files.
"""

from __future__ import annotations

import json
from pathlib import Path

from checks.findings import Finding
from checks.schema_registry import validation_errors
from scripts.layout import ORIGINAL_DIR, SOURCE_MANIFEST, MigrationLayout

STEP = "analyze"
RERUN = "re-run `migrate analyze` in the working directory (and carry the new report into the app)"


def key_facts(payload: dict) -> dict:
    """The facts a stale report would get wrong, in a form that compares with `==`."""
    agent = payload.get("agent_class")
    return {
        "model_kind": payload.get("model_kind"),
        "entry_file": payload.get("entry_file"),
        "task": payload.get("task"),
        "agent_class": None if agent is None else {
            "name": agent["name"], "base": agent["base"], "path": agent["path"],
            "methods": {name: {key: method.get(key) for key in ("present", "is_async", "calls_predict_stream")}
                        for name, method in agent["methods"].items()},
        },
        "frameworks": sorted(framework["name"] for framework in payload.get("frameworks", [])),
        "state": payload.get("state", {}).get("kinds"),
        "code_modules": sorted(module["path"] for module in payload.get("code", {}).get("modules", [])),
        "artifacts": mlmodel_artifacts(payload),
        "resources": resource_keys(payload.get("resources", [])),
        "auth_policy": auth_keys(payload.get("auth_policy")),
        "requirements": requirement_lines(payload.get("requirements")),
        "python_version": payload.get("python_version"),
        "input_example": (payload.get("input_example") or {}).get("present"),
        "source_files": {item["path"]: item["sha256"] for item in payload.get("source_files", [])},
        "blocking_calls": len(payload.get("blocking_calls", [])),
    }


def mlmodel_artifacts(payload: dict) -> list:
    return [[artifact["key"], artifact["path"]] for artifact in payload.get("artifacts", {}).get("declared", [])]


def resource_keys(resources: list[dict]) -> list:
    return sorted([resource["provider"], resource["type"], resource["name"] or "", resource["on_behalf_of_user"],
                   resource["declared_in"]] for resource in resources)


def auth_keys(policy: dict | None) -> dict | None:
    if policy is None:
        return None
    return {"system_resources": resource_keys(policy["system_resources"]),
            "user_api_scopes": sorted(policy["user_api_scopes"])}


def requirement_lines(requirements: list[dict] | None) -> list[str] | None:
    return None if requirements is None else [entry["line"] for entry in requirements]


def stale(report_path: str, fact: str, reported, found, against: str) -> Finding:
    return Finding("ANA101", "error", report_path,
                   f"the report's {fact} does not match {against}: reported {_short(reported)}, found {_short(found)}",
                   RERUN)


def _short(value) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 200 else text[:199] + "…"


def compare_with_original(layout: MigrationLayout, payload: dict, report_path: str) -> list[Finding]:
    """Run the analysis again on the download and compare the key facts."""
    from scripts.analyze import analyze_model
    from scripts.errors import MigrateError

    try:
        fresh, _ = analyze_model(layout.original, layout.relative(layout.original))
    except MigrateError as error:
        return [Finding("ANA102", "error", layout.relative(layout.original), error.message, error.fix)]
    reported, found = key_facts(payload), key_facts(fresh)
    return [stale(report_path, fact, reported[fact], found[fact], f"{ORIGINAL_DIR}/")
            for fact in reported if reported[fact] != found[fact]]


def manifest_hashes(path: Path) -> dict[str, str]:
    """`{path relative to the model: sha256}` from the download's manifest, whichever of the plain shapes it has."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    files = document.get("files", document) if isinstance(document, dict) else document
    hashes: dict[str, str] = {}
    if isinstance(files, dict):
        items = [(key, value if isinstance(value, str) else (value or {}).get("sha256")) for key, value in files.items()]
    elif isinstance(files, list):
        items = [(entry.get("path"), entry.get("sha256")) for entry in files if isinstance(entry, dict)]
    else:
        items = []
    for relative, digest in items:
        if isinstance(relative, str) and isinstance(digest, str):
            hashes[relative.removeprefix(f"{ORIGINAL_DIR}/")] = digest
    return hashes


def compare_with_source_copies(layout: MigrationLayout, payload: dict, report_path: str) -> list[Finding]:
    """From the app folder alone: the facts the carried MLmodel, requirements and input example hold."""
    from scripts.analyze import INPUT_EXAMPLE, MLMODEL, REQUIREMENTS, mlmodel_facts, read_mlmodel, read_requirements
    from scripts.errors import MigrateError

    source = layout.source
    shown = layout.relative(source)
    try:
        mlmodel = read_mlmodel(source / MLMODEL)
    except MigrateError:
        return [Finding("ANA102", "error", shown,
                        f"neither {ORIGINAL_DIR}/ nor an MLmodel copy in {shown}: nothing to check the report against",
                        "run `migrate check` where the download is, or carry migration/source/ into the app with "
                        "`migrate scaffold --force`")]
    facts = mlmodel_facts(mlmodel)
    against = f"{shown}/{MLMODEL}"
    findings = []
    reported_entry = payload.get("entry_file")
    expected = {
        "model_kind": (payload.get("model_kind"), facts["model_kind"]),
        "entry_file": ({key: reported_entry[key] for key in ("path", "model_code_path")} if reported_entry else None,
                       facts["entry_file"]),
        "task": (payload.get("task"), facts["task"]),
        "artifacts": (mlmodel_artifacts(payload), [list(pair) for pair in facts["artifact_keys"]]),
        "resources": (resource_keys(payload.get("resources", [])), resource_keys(facts["resources"])),
        "auth_policy": (auth_keys(payload.get("auth_policy")), auth_keys(facts["auth_policy"])),
        "python_version.mlmodel": ((payload.get("python_version") or {}).get("mlmodel"),
                                   None if facts["mlmodel_python_version"] is None
                                   else str(facts["mlmodel_python_version"])),
    }
    for fact, (reported, found) in expected.items():
        if reported != found:
            findings.append(stale(report_path, fact, reported, found, against))

    requirements = read_requirements(source / REQUIREMENTS)
    if requirements is not None and requirement_lines(payload.get("requirements")) != requirement_lines(requirements):
        findings.append(stale(report_path, "requirements", requirement_lines(payload.get("requirements")),
                              requirement_lines(requirements), f"{shown}/{REQUIREMENTS}"))
    example_reported = (payload.get("input_example") or {}).get("present")
    example_copied = (source / INPUT_EXAMPLE).is_file()
    if example_reported is not None and example_copied and not example_reported:
        findings.append(stale(report_path, "input_example.present", example_reported, example_copied,
                              f"{shown}/{INPUT_EXAMPLE}"))

    hashes = manifest_hashes(source / SOURCE_MANIFEST)
    for item in payload.get("source_files", []):
        digest = hashes.get(item["path"])
        if hashes and digest is None:
            findings.append(Finding("ANA103", "error", report_path,
                                    f"the analysed file {item['path']} is not in the download's manifest",
                                    RERUN))
        elif digest is not None and digest != item["sha256"]:
            findings.append(Finding("ANA103", "error", report_path,
                                    f"the analysed {item['path']} differs from the downloaded one (sha256 mismatch)",
                                    RERUN))
    return findings


def check_analysis(layout: MigrationLayout) -> list[Finding]:
    report_path = layout.report_path(STEP)
    shown = layout.relative(report_path)
    try:
        document = json.loads(report_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return []  # `migrate check` already reports it (CHK002); there are no facts to compare
    if validation_errors(document, STEP):
        return []  # likewise (CHK003): comparing a payload of unknown shape would only add noise
    payload = document["payload"]
    if layout.original.is_dir():
        return compare_with_original(layout, payload, shown)
    return compare_with_source_copies(layout, payload, shown)
