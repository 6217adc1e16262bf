"""`migrate analyze`: describe the downloaded agent from its files, without running any of its code.

It reads `original_mlflow_model/` (never writing to it): the MLmodel (model kind, entry file, task,
artifacts, resources, auth policy), requirements.txt, python_env.yaml, the input example, and the Python
source through `scripts.model` (agent class, methods, state, frameworks, blocking calls). The
result is `migration/reports/analyze.json`, the contract the code and resources steps read
(`checks/schemas/analyze.schema.json`). What needs the user's attention becomes an ANA finding.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml
from scripts.analyze_findings import RERUN_DOWNLOAD, analysis_findings
from scripts.core.findings import Finding
from scripts.model.agent_source import AgentSource, read_agent_source
from scripts.model.agent_state import agent_state_facts
from scripts.model.pickled import pickled_agent_class
from scripts.model.files import packages_of
from scripts.model.import_calls import model_import_calls  # patterns (issue 11)
from scripts.model.mlmodel import (MLMODEL, PICKLED_MODEL, UnreadableMLmodel, declared_artifacts,
                                   mlmodel_facts, pyfunc_flavor, read_mlmodel, resources_api_version)
from scripts.model.requirements import read_requirements
from scripts.core.errors import MigrateError
from scripts.core.layout import MigrationLayout
from scripts.core.reports import StepReport

STEP = "analyze"
REQUIREMENTS = "requirements.txt"
PYTHON_ENV = "python_env.yaml"
INPUT_EXAMPLE = "input_example.json"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = ("Read original_mlflow_model/ (never changing it) and write migration/reports/analyze.json: "
                          "entry file, agent class, framework, state, artifacts, resources, auth policy.")


# ---------------------------------------------------------------------------------------------------- other files


def python_version_facts(root: Path, mlmodel: dict) -> dict:
    """The Python the model was logged with: python_env.yaml first, the MLmodel's pyfunc flavor otherwise."""
    from_mlmodel = pyfunc_flavor(mlmodel).get("python_version")
    from_env = None
    env = root / PYTHON_ENV
    if env.is_file():
        try:
            document = yaml.safe_load(env.read_text(encoding="utf-8"))
        except yaml.YAMLError:
            document = None
        if isinstance(document, dict) and document.get("python"):
            from_env = str(document["python"])
    version = from_env or (str(from_mlmodel) if from_mlmodel else None)
    source = PYTHON_ENV if from_env else (MLMODEL if from_mlmodel else None)
    return {"version": version, "source": source, "mlmodel": str(from_mlmodel) if from_mlmodel else None}


def input_example_facts(root: Path, mlmodel: dict) -> dict:
    """Whether the model carries an input example, and its shape (Responses `input`, chat `messages`, other)."""
    info = mlmodel.get("saved_input_example_info")
    declared = info.get("artifact_path") if isinstance(info, dict) else None
    relative = str(declared or INPUT_EXAMPLE)
    path = root / relative
    facts = {"present": path.is_file(), "path": relative, "declared": declared is not None,
             "format": None, "keys": []}
    if facts["present"]:
        try:
            example = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            facts["format"] = "invalid"
            return facts
        if isinstance(example, dict):
            facts["keys"] = sorted(str(key) for key in example)
            facts["format"] = "responses" if "input" in example else "chat" if "messages" in example else "other"
        else:
            facts["format"] = "other"
    return facts


def artifact_facts(root: Path, mlmodel: dict, reads: list[dict]) -> dict:
    """Declared artifacts (does each file exist, where code reads it), files not declared, reads of unknown keys."""
    declared = declared_artifacts(mlmodel)
    keys = {artifact["key"] for artifact in declared}
    declared_paths = {artifact["path"].rstrip("/") for artifact in declared}
    entries = []
    for artifact in declared:
        target = root / artifact["path"] if artifact["path"] else None
        entries.append({**artifact,
                        "exists": bool(target and target.exists()),
                        "is_dir": bool(target and target.is_dir()),
                        "read_at": [{"path": read["path"], "line": read["line"], "text": read["text"]}
                                    for read in reads if read["key"] == artifact["key"]
                                    or (read["literal"] and read["literal"].endswith(artifact["path"]))]})
    folder = root / "artifacts"
    files = sorted(path.relative_to(root).as_posix() for path in folder.rglob("*") if path.is_file()) \
        if folder.is_dir() else []
    undeclared = [path for path in files
                  if not any(path == declared_path or path.startswith(declared_path + "/")
                             for declared_path in declared_paths)]
    unknown_reads = [read for read in reads if read["key"] is not None and read["key"] not in keys]
    return {"declared": entries, "files": files, "undeclared_files": undeclared, "reads": reads,
            "unknown_keys_read": unknown_reads}



# ---------------------------------------------------------------------------------------------------- the analysis


def redownload_command(layout: MigrationLayout) -> str:
    """The download command that replaces the original, with the arguments of the first download when known."""
    try:
        inputs = json.loads(layout.report_path("download").read_text(encoding="utf-8"))["inputs"]
    except (OSError, ValueError, KeyError, TypeError):
        return RERUN_DOWNLOAD
    argv = ["migrate", "download", "--force"]
    for option in ("endpoint", "model_uri", "entity", "version", "profile", "registry_uri"):
        value = inputs.get(option) if isinstance(inputs, dict) else None
        if isinstance(value, str) and value and "@" not in value:  # never repeat credentials of a URI
            argv += [f"--{option.replace('_', '-')}", value]
    if len(argv) == 3:
        return RERUN_DOWNLOAD
    argv += ["--workdir", str(layout.workdir)]
    return f"download the model again over the incomplete copy: `{' '.join(argv)}`"


def analyze_model(root: Path, model_dir: str, redownload: str = RERUN_DOWNLOAD) -> tuple[dict, list[Finding]]:
    """The payload and findings for the downloaded model at `root` (read only)."""
    try:
        mlmodel = read_mlmodel(root / MLMODEL)
    except UnreadableMLmodel as error:
        raise MigrateError(str(error), redownload, code="ANA020") from error
    facts = mlmodel_facts(mlmodel)
    source = model_source(root, facts)
    payload = model_payload(root, model_dir, mlmodel, facts, source)
    return payload, analysis_findings(model_dir, facts, source, root, payload, mlmodel)


def model_source(root: Path, facts: dict) -> AgentSource | None:
    """The model's Python source, or None where there is none to read (another flavor, a pickle without code/)."""
    entry = facts["entry_file"]
    source = read_agent_source(root, entry["path"] if entry else None) if facts["model_kind"] != "other" else None
    if source is not None and facts["model_kind"] == "pickled" and not source.code_sources:
        source = None
    return source


def model_payload(root: Path, model_dir: str, mlmodel: dict, facts: dict, source: AgentSource | None) -> dict:
    """The analyze.json payload: what the MLmodel, the source and the other files of the model say."""
    entry = facts["entry_file"]
    reads = source.artifact_reads() if source else []
    signals = source.state_signals() if source else []
    kinds = sorted({signal["signal"] for signal in signals})
    lakebase_resource = any(resource["type"] == "lakebase" for resource in facts["resources"])
    agent = source.agent_class if source and facts["model_kind"] != "langchain" else None
    if facts["model_kind"] == "pickled":  # shapes: the pickled instance's class, when code/ defines it
        agent = pickled_agent_class(root / PICKLED_MODEL, source.code_sources if source else [])[0]
    request_writes, construction = agent_state_facts(source.sources, agent) if source else ([], None)
    return {
        "model_dir": model_dir,
        "mlflow_version": None if facts["mlflow_version"] is None else str(facts["mlflow_version"]),
        "model_kind": facts["model_kind"],
        "loader_module": facts["loader_module"],
        "entry_file": None if entry is None else {
            **entry, "exists": bool(source and source.entry),
            "sha256": source.entry.sha256 if source and source.entry else None},
        "task": facts["task"],
        "agent_class": agent,
        "candidate_classes": source.search.candidates if source and source.search else [],
        "set_model_calls": [{"path": source.entry.path, "line": call.line, "target": call.target,
                             "class_name": call.class_name} for call in source.search.set_model]
        if source and source.search else [],
        "frameworks": source.frameworks() if source else [],
        "state": {"stateful": bool(signals) or lakebase_resource or bool(request_writes), "kinds": kinds,
                  "signals": signals, "request_writes": request_writes, "construction": construction},
        "code": {
            "present": (root / "code").is_dir(),
            "modules": source.modules() if source else [],
            "packages": _packages(source),
            "other_files": source.other_code_files if source else [],
        },
        "local_imports": source.local_imports() if source else [],
        "artifacts": artifact_facts(root, mlmodel, reads),
        "resources": facts["resources"],
        "resources_api_version": resources_api_version(mlmodel),
        "auth_policy": facts["auth_policy"],
        "user_credentials": source.user_credentials() if source else [],
        "requirements": read_requirements(root / REQUIREMENTS),
        "python_version": python_version_facts(root, mlmodel),
        "input_example": input_example_facts(root, mlmodel),
        "blocking_calls": source.blocking_calls() if source else [],
        "import_time_calls": model_import_calls(source.sources) if source else [],  # patterns (issue 11)
        "source_files": [item.facts() for item in source.sources] if source else [],
    }


def _packages(source: AgentSource | None) -> list[dict]:
    return packages_of([item.path for item in source.code_sources]) if source else []


def analyze(workdir: Path) -> tuple[MigrationLayout, StepReport]:
    """Analyse `<workdir>/original_mlflow_model/` and return the layout to write to and the report."""
    layout = MigrationLayout.discover(workdir)
    original = layout.original
    if not original.is_dir():
        raise MigrateError(f"no downloaded model at {original}",
                           "run `migrate download --endpoint NAME` (or `--model-uri models:/NAME/VERSION`) "
                           "in this working directory first", code="ANA021")
    report = StepReport(step=STEP, inputs={"model_dir": layout.relative(original)}, layout=layout)
    report.payload, report.findings = analyze_model(original, layout.relative(original), redownload_command(layout))
    report.outputs = {"report": layout.relative(layout.report_path(STEP))}
    return layout, report


def run(args: argparse.Namespace) -> StepReport:
    layout, report = analyze(args.workdir)
    path = layout.report_path(STEP)  # the CLI writes it when this returns
    agent = report.payload["agent_class"]
    summary = f"{agent['name']} ({agent['base']})" if agent else "no agent class"
    print(f"analyzed {report.payload['model_dir']}: {summary}; report: {layout.relative(path)}", file=sys.stderr)
    return report
