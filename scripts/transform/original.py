"""The downloaded model as the code step sees it: analyze's report, checked against the files it describes.

The code step does not find the agent again. It reads `analyze.json` (validated against its schema), checks
that the entry file is still the one analyze hashed, and takes the class, its chain and its methods from
there. MLmodel is read only through the one reader (`scripts.model.mlmodel`), for the logged model config.
Every way the files can be unreadable (MLmodel that is not YAML, a file that is not UTF-8 or not Python)
becomes a COD021 error naming the file and line, never a traceback.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import libcst as cst

from scripts.core.schema_registry import validation_errors
from scripts.core.errors import MigrateError
from scripts.core.layout import MigrationLayout
from scripts.model.mlmodel import MLMODEL, UnreadableMLmodel, mlmodel_facts, model_config, read_mlmodel
from scripts.transform.modules import ARTIFACTS_DIR
from scripts.transform import pickled as pickled_model

ANALYZE = "analyze"
REDOWNLOAD = ("download the model again: `migrate download --force` with the same --endpoint (or --model-uri) "
              "and --workdir, then `migrate analyze`")


@dataclass(frozen=True)
class OriginalModel:
    root: Path
    entry: Path
    task: str | None
    artifact_keys: dict[str, str]  # MLmodel artifacts key → path under artifacts/
    model_config: dict | None  # MLmodel python_function.config: what `log_model(model_config=...)` stored
    agent: dict  # analyze.json's agent_class: name, base, base_chain, found_by, methods
    entry_text: str | None = None  # a pickled model's entry module, written here (scripts/transform/pickled.py)


def analysis_path(layout: MigrationLayout) -> Path:
    """analyze.json: the working directory's (where `migrate analyze` writes), else the app's copy."""
    in_workdir = MigrationLayout.for_workdir(layout.workdir).report_path(ANALYZE)
    return in_workdir if in_workdir.is_file() else layout.report_path(ANALYZE)


def read_analysis(layout: MigrationLayout) -> dict:
    """analyze.json's payload, validated; an absent or invalid report is an error that says to run analyze."""
    path = analysis_path(layout)
    rerun = f"run `migrate analyze --workdir {layout.workdir}` before `migrate code`"
    if not path.is_file():
        raise MigrateError(f"no analysis of the download ({layout.relative(path)}): the code step migrates the "
                           "agent class that `migrate analyze` found", rerun, code="COD020")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise MigrateError(f"{layout.relative(path)} is not JSON: {error}", rerun, code="COD020") from error
    errors = validation_errors(document, ANALYZE)
    if errors:
        raise MigrateError(f"{layout.relative(path)} breaks its schema: {errors[0]}", rerun, code="COD020")
    return document["payload"]


def read_original(layout: MigrationLayout) -> OriginalModel:
    root = layout.original
    if not (root / MLMODEL).is_file():
        raise MigrateError(f"no {layout.relative(root / MLMODEL)}: the download is missing",
                           "run `migrate download` in the working directory first", code="COD001")
    try:
        mlmodel = read_mlmodel(root / MLMODEL)
    except UnreadableMLmodel as error:
        raise MigrateError(f"{layout.relative(error.path)}{f':{error.line}' if error.line else ''}: {error.problem}",
                           REDOWNLOAD, code="COD021") from error
    payload = read_analysis(layout)
    facts = mlmodel_facts(mlmodel)
    if (facts["model_kind"], facts["entry_file"]) != (payload["model_kind"], _mlmodel_entry(payload)):
        raise MigrateError(f"{layout.relative(root / MLMODEL)} changed since `migrate analyze` read it",
                           f"run `migrate analyze --workdir {layout.workdir}` again", code="COD020")
    entry_facts = payload["entry_file"]
    if payload["model_kind"] == "pickled" and (payload["agent_class"] or {}).get("pickle"):
        return pickled_model.original_model(layout, root, payload, model_config(mlmodel))  # shapes
    if payload["model_kind"] not in ("models-from-code", "langchain") or entry_facts is None:
        pickled = payload["model_kind"] == "pickled"
        raise MigrateError(
            "the model was not logged from code (MLmodel has no python_function.model_code_path"
            + ("; it holds a pickled python_model.pkl)" if pickled else ")"),
            "log the agent again as models-from-code (`mlflow.pyfunc.log_model(python_model=\"agent.py\", ...)`), "
            "register and serve that version, then download it; a pickled agent has no source to migrate",
            code="COD001")
    entry = root / entry_facts["path"]
    if not entry.is_file():
        raise MigrateError(f"the entry file {entry.name} named by MLmodel is not in {layout.relative(root)}/",
                           REDOWNLOAD, code="COD001")
    if hashlib.sha256(entry.read_bytes()).hexdigest() != entry_facts["sha256"]:
        raise MigrateError(f"{layout.relative(entry)} changed since `migrate analyze` read it",
                           f"run `migrate analyze --workdir {layout.workdir}` again", code="COD020")
    for item in payload["source_files"]:
        if item["syntax_error"] is not None:
            error = item["syntax_error"]
            raise MigrateError(f"{layout.relative(root / item['path'])}:{error['line']}: not valid Python "
                               f"({error['message']})",
                               f"fix {item['path']} in the original source and log the model again (analyze lists "
                               "it as ANA009); the code step cannot rewrite a file it cannot parse", code="COD021")
    agent = payload["agent_class"]
    if payload["model_kind"] == "langchain":  # shapes: the runnable set_model registers (ANA051)
        agent = {"name": "runnable", "langchain": True}
    if agent is None:
        raise MigrateError(
            f"no agent class in {entry.name}: `migrate analyze` found no `mlflow.models.set_model(...)` naming one "
            "and no class deriving from ResponsesAgent, ChatAgent, ChatModel or PythonModel (ANA003 in its report)",
            f"make {entry.name} end with `mlflow.models.set_model(MyAgent())` in the original, or migrate "
            f"the file by hand into agent_server/agent.py", code="COD002")
    keys = {}
    for artifact in payload["artifacts"]["declared"]:
        path = artifact["path"].replace("\\", "/")
        if path.startswith(f"{ARTIFACTS_DIR}/"):
            keys[artifact["key"]] = path[len(ARTIFACTS_DIR) + 1:]
    return OriginalModel(root, entry, payload["task"], keys, model_config(mlmodel), agent)


def _mlmodel_entry(payload: dict) -> dict | None:
    entry = payload["entry_file"]
    return None if entry is None else {"path": entry["path"], "model_code_path": entry["model_code_path"]}


def read_python(path: Path, shown: str) -> str:
    """A model file's text; bytes that are not UTF-8 are an error naming the file and line."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise MigrateError(f"{shown}:{line}: byte 0x{data[error.start]:02x} is not UTF-8 ({error.reason}); "
                           "the app's Python reads source as UTF-8",
                           f"save {shown} as UTF-8 in the original and log the model again", code="COD021") from error


def syntax_error(error: cst.ParserSyntaxError, shown: str) -> MigrateError:
    """A file the transform cannot parse, as an error naming the file and line."""
    return MigrateError(f"{shown}:{error.raw_line}: not valid Python ({error.message})",
                        f"fix {shown} in the original source and log the model again (analyze lists it as ANA009); "
                        "the code step cannot rewrite a file it cannot parse", code="COD021")
