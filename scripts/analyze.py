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
from scripts.core.findings import Finding
from scripts.model.agent_class import agent_classes_in_code
from scripts.model.agent_source import AgentSource, read_agent_source
from scripts.model.agent_state import agent_state_facts
from scripts.model.langchain_model import factory_finding, langchain_findings
from scripts.model.pickled import pickled_agent_class, pickled_findings
from scripts.model.files import packages_of
from scripts.model.import_calls import COST, LAZY, model_import_calls  # patterns (issue 11)
from scripts.model.placeholders import mlmodel_placeholders  # patterns (issue 11)
from scripts.model.mlmodel import (MLMODEL, PICKLED_MODEL, RESOURCE_TYPES, UnreadableMLmodel, declared_artifacts,
                                   mlmodel_facts, pyfunc_flavor, read_mlmodel, resources_api_version)
from scripts.model.requirements import parse_requirements, read_requirements
from scripts.core.errors import MigrateError
from scripts.core.layout import MigrationLayout
from scripts.core.reports import StepReport

STEP = "analyze"
REQUIREMENTS = "requirements.txt"
PYTHON_ENV = "python_env.yaml"
INPUT_EXAMPLE = "input_example.json"

# `metadata.task` MLflow writes for each agent interface.
TASK_OF_BASE = {"ResponsesAgent": "agent/v1/responses", "ChatAgent": "agent/v2/chat", "ChatModel": "agent/v1/chat"}
LEGACY_BASES = ("ChatAgent", "ChatModel")

# `migrate download` refuses to replace a download without --force, so the fix names it.
RERUN_DOWNLOAD = ("download the model again over the incomplete copy: `migrate download --force` with the same "
                  "--endpoint (or --model-uri) and --workdir as the first download")


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


# ---------------------------------------------------------------------------------------------------- findings


class Findings:
    """The findings of one analysis, with paths shown as the user sees them (relative to the working directory)."""

    def __init__(self, model_dir: str):
        self.model_dir = model_dir
        self.items: list[Finding] = []

    def add(self, code: str, severity: str, path: str | None, message: str, fix: str) -> None:
        shown = f"{self.model_dir}/{path}" if path else self.model_dir
        self.items.append(Finding(code, severity, shown, message, fix))


def source_findings(findings: Findings, facts: dict, source: AgentSource | None, root: Path = Path(".")) -> None:
    """What the Python source and the MLmodel together say needs attention."""
    kind = facts["model_kind"]
    if kind == "pickled":  # shapes: scripts/model/pickled.py reads the pickle's opcodes, never loads it
        in_code = agent_classes_in_code(source.code_sources) if source else []
        hint = "; code/ defines " + ", ".join(f"{found['name']} ({found['path']}:{found['line']})"
                                              for found in in_code) if in_code else ""
        pickled_findings(findings, *pickled_agent_class(root / PICKLED_MODEL, source.code_sources if source else []),
                         hint)
        return
    if kind == "langchain":  # shapes: MLflow's langchain flavor (scripts/model/langchain_model.py)
        langchain_findings(findings, facts, source)
        return
    if kind == "other":
        findings.add("ANA011", "error", MLMODEL,
                     f"not a python_function agent model (loader {facts['loader_module']!r}): nothing to migrate "
                     "as an agent class",
                     "migrate a model logged with `mlflow.pyfunc.log_model(python_model=...)`; for another flavor, "
                     "wrap it in a ResponsesAgent first and log that")
        return
    entry = facts["entry_file"]
    if entry is None or source is None or source.entry is None:
        shown = entry["path"] if entry else MLMODEL
        findings.add("ANA002", "error", shown,
                     "the entry file named by MLmodel's model_code_path is not at the model's root"
                     if entry else "MLmodel has a code-model loader but no model_code_path",
                     RERUN_DOWNLOAD)
        return
    for broken in source.syntax_errors():
        error = broken.syntax_error
        findings.add("ANA009", "error", broken.path,
                     f"not valid Python (line {error.lineno}: {error.msg}); it was not analysed",
                     "fix the file in the original source and log the model again, or fix it in the app after "
                     "`migrate code`; the analysis of this file is missing until then")
    if source.entry.tree is None:
        return
    agent = source.agent_class
    if agent is not None and agent.get("factory"):  # shapes: set_model(build_agent())
        factory_finding(findings, agent)
        if agent["found_by"] == "factory":
            return
    if agent is None:
        findings.add("ANA003", "error", entry["path"],
                     "no agent class found: no set_model(...) names a class, and no class here derives from "
                     "ResponsesAgent, ChatAgent, ChatModel or PythonModel",
                     "check that this is the file passed to log_model; if the class comes from a package that is "
                     "not in code/, add its source to code/ or tell the code step which class to use")
        return
    if len(source.search.candidates) > 1:
        findings.add("ANA004", "warning", agent["path"],
                     f"several candidate agent classes ({', '.join(source.search.candidates)}); "
                     f"{agent['name']} was chosen as the most specific",
                     "make sure the entry file calls mlflow.models.set_model(<the agent>) so the choice is explicit")
    if agent["base"] in LEGACY_BASES:
        findings.add("ANA005", "warning", agent["path"],
                     f"{agent['name']} is a {agent['base']} (legacy interface); Databricks Apps' agent server "
                     "serves only the Responses format",
                     "follow the code step's guided path: the code step wraps the class so its messages become "
                     "Responses output items (text, function_call, function_call_output); port it to "
                     "ResponsesAgent when you can")
    elif agent["base"] in ("PythonModel", "other"):
        findings.add("ANA017", "warning", agent["path"],
                     f"{agent['name']} derives from {agent['base_chain'][-1]}, not from an agent interface; its "
                     "input and output format is the author's own",
                     "port the class to mlflow.pyfunc.ResponsesAgent (predict/predict_stream on "
                     "ResponsesAgentRequest) before the code step, or adapt the entry module by hand")
    methods = agent["methods"]
    if not methods["predict"]["present"] and not methods["predict_stream"]["present"]:
        findings.add("ANA010", "error", agent["path"],
                     f"{agent['name']} defines neither predict nor predict_stream (in the classes we could read)",
                     "if they come from a base class outside the model files, add that source to code/; "
                     "otherwise the class is not an agent")
    expected = TASK_OF_BASE.get(agent["base"])
    if expected and facts["task"] != expected:
        findings.add("ANA013", "warning", MLMODEL,
                     f"metadata.task is {facts['task']!r} but {agent['name']} is a {agent['base']} "
                     f"(MLflow writes {expected!r} for it)",
                     "nothing breaks in the app; check that the analysed class is the one that was served")


def model_findings(findings: Findings, payload: dict) -> None:
    if not payload["input_example"]["present"]:
        findings.add("ANA006", "warning", payload["input_example"]["path"],
                     "no input example: the smoke step has no request the original model is known to answer",
                     "add an input example when logging (`input_example=...`), or write input_example.json "
                     "in the app's migration/source/ with a Responses request ({\"input\": [...]})")
    for artifact in payload["artifacts"]["declared"]:
        if not artifact["exists"]:
            findings.add("ANA007", "error", artifact["path"] or MLMODEL,
                         f"artifact {artifact['key']!r} is declared in MLmodel but its file is missing",
                         RERUN_DOWNLOAD)
    for read in payload["artifacts"]["unknown_keys_read"]:
        findings.add("ANA012", "warning", read["path"],
                     f"line {read['line']} reads artifact {read['key']!r}, which MLmodel does not declare",
                     "check the key: in the app the code step maps only declared artifacts to files")
    for resource in payload["resources"]:
        if not resource["known"]:
            findings.add("ANA008", "warning", MLMODEL,
                         f"unknown resource type {resource['provider']}.{resource['type']} "
                         f"({resource['name']}): kept in the report, but no app resource is made for it",
                         "declare the matching app resource in databricks.yml by hand after `migrate resources`, "
                         "or update agent-migrate if MLflow added this type")
    version = payload["resources_api_version"]
    if version not in (None, "1"):
        findings.add("ANA008", "warning", MLMODEL,
                     f"resources api_version {version!r}: only \"1\" is known; its entries are read as version 1",
                     "compare the resources in the report with the MLmodel before `migrate resources`")
    credential_lines: dict[str, list[str]] = {}
    for site in payload["user_credentials"]:
        credential_lines.setdefault(site["path"], []).append(str(site["line"]))
    for path, lines in credential_lines.items():
        findings.add("ANA014", "warning", path,
                     f"line(s) {', '.join(lines)} use ModelServingUserCredentials (Model Serving's "
                     "on-behalf-of-user auth), which does not exist in Apps",
                     "`migrate code` rewrites a WorkspaceClient(credentials_strategy=ModelServingUserCredentials()) "
                     "built per request into agent_server.user_auth.user_workspace_client() (the user's forwarded "
                     "token); any other use gets a `# MIGRATE USER-AUTH` comment and error COD030 to fix by hand")
    for edge in payload["local_imports"]:
        if not edge["resolved"]:
            findings.add("ANA016", "warning", edge["path"],
                         f"line {edge['line']}: the relative import {edge['module']!r} has no package to load from",
                         "make it an absolute import of the code/ module")
    request_state_findings(findings, payload["state"])
    if payload["state"]["signals"] or any(resource["type"] == "lakebase" for resource in payload["resources"]):
        kinds = ", ".join(payload["state"]["kinds"]) or "lakebase resource"
        findings.add("ANA015", "info", payload["entry_file"]["path"] if payload["entry_file"] else MLMODEL,
                     f"the agent keeps conversation state ({kinds})",
                     "in the app, open checkpointer/store connection pools once (server lifespan or module "
                     "level), not per request; keep thread ids coming from the request's custom_inputs/context")


def request_state_findings(findings: Findings, state: dict) -> None:
    """ANA030/ANA031: state a request writes, which one shared instance in the app would mix between users."""
    by_kind: dict[str, list[dict]] = {}
    for write in state["request_writes"]:
        key = "guarded" if write.get("guarded") else "instance" if write["kind"] == "instance" else "shared"
        by_kind.setdefault(key, []).append(write)
    for kind, writes in by_kind.items():
        lines = "; ".join(f"{write['path']}:{write['line']} {write['attribute']} ({write['how']}, in "
                          f"{write['function']})" for write in writes)
        if kind == "instance":
            construction = state["construction"] or {"cheap": False, "costs": []}
            findings.add("ANA030", "warning", writes[0]["path"],
                         f"the request path writes the agent's own attributes: {lines}; in the app one process "
                         "serves many requests at once, so one shared instance would mix users' values",
                         "`migrate code` builds the agent per request when building it is cheap"
                         + (" (it is here)" if construction["cheap"] else
                            f" (here it is not: {len(construction['costs'])} cost(s) in __init__/load_context, "
                            "so the code step will refuse with COD050)")
                         + "; better, keep per-request values in local variables")
        elif kind == "guarded":
            findings.add("ANA033", "info", writes[0]["path"],
                         f"the request path writes state under a lock: {lines}; it is shared by every request on "
                         "purpose", "make sure one user never reads what another wrote there (key it by user or "
                         "conversation); `migrate code` keeps it shared and warns with COD053")
        else:
            findings.add("ANA031", "warning", writes[0]["path"],
                         f"the request path writes module globals or class attributes: {lines}; every request "
                         "of the app shares them",
                         "keep per-request values in local variables (pass them as arguments); `migrate code` "
                         "refuses these writes with COD051")


# ---------------------------------------------------------------------------------------------------- patterns (issue 11)


def pattern_findings(findings: Findings, payload: dict, mlmodel: dict) -> None:
    """Calls at import (ANA040) and names with unfilled placeholders (ANA041)."""
    for site in payload["import_time_calls"]:
        findings.add("ANA040", "warning", site["path"],
                     f"line {site['line']}: `{site['call']}(...)` runs at import and reaches {site['reaches']}; "
                     f"in the app {COST}", LAZY)
    found = mlmodel_placeholders(mlmodel)
    if found:
        findings.add("ANA041", "warning", MLMODEL,
                     "names with a placeholder that was never filled in: "
                     + ", ".join(f"{item.value!r} ({item.where})" for item in found[:6]),
                     "find the real names (the deploy script that filled them for Model Serving) and use them in "
                     "databricks.yml after `migrate resources` and in the app's config")


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
    entry = facts["entry_file"]
    source = read_agent_source(root, entry["path"] if entry else None) if facts["model_kind"] != "other" else None
    if source is not None and facts["model_kind"] == "pickled" and not source.code_sources:
        source = None
    reads = source.artifact_reads() if source else []
    signals = source.state_signals() if source else []
    kinds = sorted({signal["signal"] for signal in signals})
    lakebase_resource = any(resource["type"] == "lakebase" for resource in facts["resources"])
    agent = source.agent_class if source and facts["model_kind"] != "langchain" else None
    if facts["model_kind"] == "pickled":  # shapes: the pickled instance's class, when code/ defines it
        agent = pickled_agent_class(root / PICKLED_MODEL, source.code_sources if source else [])[0]
    request_writes, construction = agent_state_facts(source.sources, agent) if source else ([], None)
    payload = {
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
    findings = Findings(model_dir)
    source_findings(findings, facts, source, root)
    model_findings(findings, payload)
    pattern_findings(findings, payload, mlmodel)  # patterns (issue 11)
    return payload, findings.items


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
