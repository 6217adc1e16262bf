"""The analyze check: the report still describes the model it claims to, verified from the files themselves.

It never runs the analysis again (a step cannot vouch for itself): it reads the files the report names.
With the download at hand (`original_mlflow_model/`): the MLmodel facts, the hash of every analysed file,
the agent class and its methods at the lines the report gives, requirements and the input example. From
an app folder alone (a reviewer's pull request): the same from the carried copies in `migration/source/`,
with the manifest's hashes standing in for the Python files.
"""

from __future__ import annotations

import ast
import hashlib
import json
from pathlib import Path

from scripts.core.findings import Finding
from scripts.core.schema_registry import validation_errors
from scripts.core.layout import ORIGINAL_DIR, SOURCE_MANIFEST, MigrationLayout
from scripts.model.files import CODE_DIR
from scripts.model.agent_source import read_agent_source
from scripts.model.mlmodel import MLMODEL, UnreadableMLmodel, mlmodel_facts, read_mlmodel
from scripts.model.agent_state import agent_state_facts
from scripts.model.requirements import read_requirements

REQUIREMENTS = "requirements.txt"
INPUT_EXAMPLE = "input_example.json"

STEP = "analyze"
RERUN = "re-run `migrate analyze` in the working directory (and carry the new report into the app)"


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


def compare_mlmodel(payload: dict, mlmodel_path: Path, against: str, report_path: str) -> list[Finding]:
    facts = mlmodel_facts(read_mlmodel(mlmodel_path))
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
    return [stale(report_path, fact, reported, found, against)
            for fact, (reported, found) in expected.items() if reported != found]


def compare_side_files(payload: dict, folder: Path, shown: str, report_path: str) -> list[Finding]:
    """requirements.txt and the input example next to the MLmodel (the download or its copies)."""
    findings = []
    requirements = read_requirements(folder / REQUIREMENTS)
    if requirements is not None and requirement_lines(payload.get("requirements")) != requirement_lines(requirements):
        findings.append(stale(report_path, "requirements", requirement_lines(payload.get("requirements")),
                              requirement_lines(requirements), f"{shown}/{REQUIREMENTS}"))
    example_reported = (payload.get("input_example") or {}).get("present")
    example_path = (payload.get("input_example") or {}).get("path") or INPUT_EXAMPLE
    example_there = (folder / Path(example_path).name).is_file()
    if example_reported is not None and example_there != example_reported:
        findings.append(stale(report_path, "input_example.present", example_reported, example_there,
                              f"{shown}/{Path(example_path).name}"))
    return findings


def compare_files(payload: dict, hashes: dict[str, str], against: str, report_path: str) -> list[Finding]:
    """Every analysed file against `hashes` (path → sha256); Python files of code/ the report never saw."""
    findings = []
    reported = {item["path"]: item["sha256"] for item in payload.get("source_files", [])}
    entry = payload.get("entry_file") or {}
    if entry.get("sha256") and entry["path"] in hashes and hashes[entry["path"]] != entry["sha256"]:
        findings.append(stale(report_path, "entry_file", entry["sha256"], hashes[entry["path"]], against))
    for path, digest in reported.items():
        if path not in hashes:
            findings.append(Finding("ANA103", "error", report_path,
                                    f"the analysed file {path} is not in {against}", RERUN))
        elif hashes[path] != digest:
            findings.append(Finding("ANA103", "error", report_path,
                                    f"the analysed {path} differs from the one in {against} (sha256 mismatch)",
                                    RERUN))
    unseen = sorted(path for path in hashes if path.startswith(f"{CODE_DIR}/") and path.endswith(".py")
                    and path not in reported)
    if unseen and payload.get("model_kind") == "models-from-code":
        findings.append(stale(report_path, "source_files", sorted(reported), sorted(reported) + unseen, against))
    return findings


def file_hashes(root: Path) -> dict[str, str]:
    return {path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(root.rglob("*")) if path.is_file() and "__pycache__" not in path.parts}


def definitions_at(root: Path, path: str) -> dict[int, str] | None:
    """Line → name of every class and function defined in `root/path`; None when it cannot be parsed."""
    try:
        tree = ast.parse((root / path).read_bytes())
    except (OSError, SyntaxError, ValueError):
        return None
    return {node.lineno: node.name for node in ast.walk(tree)
            if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))}


def compare_agent_class(payload: dict, root: Path, report_path: str) -> list[Finding]:
    """The agent class and each method the report says is present are defined where it says."""
    agent = payload.get("agent_class")
    if agent is None:
        return []
    # shapes: an object a library factory returns has no class in the model's files to point at.
    claims = [] if agent.get("found_by") == "factory" else [(agent["path"], agent["line"], agent["name"], "agent class")]
    claims += [(method["path"], method["line"], name, f"method {agent['name']}.{name}")
               for name, method in agent["methods"].items() if method.get("present")]
    findings = []
    for path, line, name, what in claims:
        found = definitions_at(root, path)
        if found is not None and found.get(line) != name:
            findings.append(Finding("ANA104", "error", report_path,
                                    f"the report's {what} is {name} at {path}:{line}, but {ORIGINAL_DIR}/{path} "
                                    f"defines {found.get(line) or 'nothing'} there", RERUN))
    return findings


def compare_model_files(payload: dict, folder: Path, shown: str, report_path: str) -> list[Finding]:
    """The report against `folder`'s MLmodel (UnreadableMLmodel when there is none to read) and side files."""
    findings = compare_mlmodel(payload, folder / MLMODEL, f"{shown}/{MLMODEL}", report_path)
    return findings + compare_side_files(payload, folder, shown, report_path)


def compare_with_original(layout: MigrationLayout, payload: dict, report_path: str) -> list[Finding]:
    """The download itself: MLmodel, every file's hash, the agent class where the report puts it."""
    original = layout.original
    shown = layout.relative(original)
    try:
        findings = compare_model_files(payload, original, shown, report_path)
    except UnreadableMLmodel as error:
        return [Finding("ANA102", "error", shown, str(error), RERUN)]
    findings += compare_files(payload, file_hashes(original), f"{ORIGINAL_DIR}/", report_path)
    return findings + compare_agent_class(payload, original, report_path) + compare_request_state(
        payload, original, report_path)


def _write_keys(writes: list[dict]) -> list[str]:
    return sorted(f"{write['path']}:{write['line']} {write['kind']} {write['attribute']} ({write['how']})"
                  for write in writes)


def compare_request_state(payload: dict, root: Path, report_path: str) -> list[Finding]:
    """The request-path writes and construction costs the report records, found again in the files (ANA032):
    the code step builds per request or refuses from these facts, so an edited report must not pass."""
    state, entry = payload.get("state") or {}, payload.get("entry_file") or {}
    if "request_writes" not in state or not entry.get("path") or not (root / entry["path"]).is_file():
        return []
    source = read_agent_source(root, entry["path"])
    writes, construction = agent_state_facts(source.sources, payload.get("agent_class"))
    if construction is None:
        return []  # no such class in the files: ANA104 says so
    findings = []
    if _write_keys(state["request_writes"]) != _write_keys(writes):
        findings.append(Finding("ANA032", "error", report_path,
                                f"the report's request-path state writes do not match {ORIGINAL_DIR}/: reported "
                                f"{_short(_write_keys(state['request_writes']))}, found {_short(_write_keys(writes))}",
                                RERUN))
    reported = state.get("construction")
    if (reported or {}).get("cheap") != (construction or {}).get("cheap") or _cost_keys(reported) != _cost_keys(construction):
        findings.append(Finding("ANA032", "error", report_path,
                                f"the report's construction facts do not match {ORIGINAL_DIR}/: reported "
                                f"{_short(reported)}, found {_short(construction)}", RERUN))
    return findings


def _cost_keys(construction: dict | None) -> list[str]:
    return sorted(f"{cost['path']}:{cost['line']} {cost['call']}" for cost in (construction or {}).get("costs", []))


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
    """From the app folder alone: the carried MLmodel, requirements and input example, the manifest's hashes."""
    source = layout.source
    shown = layout.relative(source)
    try:
        findings = compare_model_files(payload, source, shown, report_path)
    except UnreadableMLmodel:
        return [Finding("ANA102", "error", shown,
                        f"neither {ORIGINAL_DIR}/ nor an MLmodel copy in {shown}: nothing to check the report against",
                        "run `migrate check` where the download is, or carry migration/source/ into the app with "
                        "`migrate scaffold --force`")]
    hashes = manifest_hashes(source / SOURCE_MANIFEST)
    if hashes:
        manifest = f"the download's manifest ({shown}/{SOURCE_MANIFEST})"
        findings += compare_files(payload, hashes, manifest, report_path)
    return findings


def check_analyze(layout: MigrationLayout) -> list[Finding]:
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
