"""The ANA findings of `migrate analyze`: what the MLmodel, the source and the payload say needs the user's
attention, each with its fix. Apart from the reading, so `analyze.py` reads as the step does: read, describe, judge.
"""

from __future__ import annotations

from pathlib import Path

from scripts.core.findings import Finding
from scripts.model.agent_class import agent_classes_in_code
from scripts.model.agent_source import AgentSource
from scripts.model.langchain_model import factory_finding, langchain_findings
from scripts.model.pickled import pickled_agent_class, pickled_findings
from scripts.model.import_calls import COST, LAZY  # patterns (issue 11)
from scripts.model.placeholders import mlmodel_placeholders  # patterns (issue 11)
from scripts.model.mlmodel import MLMODEL, PICKLED_MODEL

# `metadata.task` MLflow writes for each agent interface.
TASK_OF_BASE = {"ResponsesAgent": "agent/v1/responses", "ChatAgent": "agent/v2/chat", "ChatModel": "agent/v1/chat"}
LEGACY_BASES = ("ChatAgent", "ChatModel")

# `migrate download` refuses to replace a download without --force, so the fix names it.
RERUN_DOWNLOAD = ("download the model again over the incomplete copy: `migrate download --force` with the same "
                  "--endpoint (or --model-uri) and --workdir as the first download")


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
    agent_class_findings(findings, facts, source)


def agent_class_findings(findings: Findings, facts: dict, source: AgentSource) -> None:
    """What the chosen agent class (its base, its methods, the MLmodel's task for it) says needs attention."""
    entry = facts["entry_file"]
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


def analysis_findings(model_dir: str, facts: dict, source: AgentSource | None, root: Path, payload: dict,
                      mlmodel: dict) -> list[Finding]:
    """Every finding of one analysis, in the order the report lists them."""
    findings = Findings(model_dir)
    source_findings(findings, facts, source, root)
    model_findings(findings, payload)
    pattern_findings(findings, payload, mlmodel)  # patterns (issue 11)
    return findings.items
