"""The MLmodel file: the one reader, and the facts that come from it alone.

Every step and check that needs MLmodel reads it here. We read the YAML ourselves rather than through
`mlflow.models.Model.load`: importing MLflow takes seconds, and `Model.load` answers a malformed file
(a `flavors` list, a scalar document) with an AttributeError deep inside, where the user needs the file
and line. The resources parser is here too, so analyze and resources map the same entries.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import yaml

MLMODEL = "MLmodel"
PYFUNC = "python_function"
CODE_MODEL_LOADER = "mlflow.pyfunc.loaders.code_model"
PICKLED_MODEL = "python_model.pkl"
ARTIFACTS_DIR = "artifacts"

# MLflow's `mlflow.models.resources.ResourceType` (api_version "1").
RESOURCE_TYPES = ("serving_endpoint", "lakebase", "vector_search_index", "function", "table", "uc_connection",
                  "sql_warehouse", "genie_space", "app", "uc_model_service")


class UnreadableMLmodel(Exception):
    """MLmodel is missing, not YAML, or not shaped like an MLmodel; `line` is 1-based when known."""

    def __init__(self, path: Path, problem: str, line: int | None = None):
        self.path, self.problem, self.line = path, problem, line
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: {problem}")


def read_mlmodel(path: Path) -> dict:
    """The MLmodel file as a mapping whose `flavors` (when present) is a mapping of mappings."""
    if not path.is_file():
        raise UnreadableMLmodel(path, "missing: this is not a complete MLflow model")
    try:
        document = yaml.safe_load(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as error:
        line = path.read_bytes()[: error.start].count(b"\n") + 1
        raise UnreadableMLmodel(path, f"not UTF-8 text ({error.reason})", line) from error
    except yaml.YAMLError as error:
        # Where the broken construct starts (an unclosed `[`) says more than where the parser gave up.
        mark = getattr(error, "context_mark", None) or getattr(error, "problem_mark", None)
        problem = getattr(error, "problem", None) or str(error)
        raise UnreadableMLmodel(path, f"not valid YAML: {problem}", mark.line + 1 if mark else None) from error
    if not isinstance(document, dict):
        raise UnreadableMLmodel(path, f"not an MLmodel mapping (the document is a {type(document).__name__})", 1)
    flavors = document.get("flavors")
    if flavors is not None and not isinstance(flavors, dict):
        raise UnreadableMLmodel(path, f"`flavors` is a {type(flavors).__name__}, not a mapping of flavor names",
                                _line_of(path, "flavors"))
    if isinstance(flavors, dict) and PYFUNC in flavors and not isinstance(flavors[PYFUNC], dict):
        raise UnreadableMLmodel(path, f"`flavors.{PYFUNC}` is not a mapping", _line_of(path, f"  {PYFUNC}"))
    return document


def _line_of(path: Path, key: str) -> int | None:
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.startswith(f"{key}:"):
            return number
    return None


def pyfunc_flavor(mlmodel: dict) -> dict:
    flavors = mlmodel.get("flavors")
    flavor = flavors.get(PYFUNC) if isinstance(flavors, dict) else None
    return flavor if isinstance(flavor, dict) else {}


LANGCHAIN = "langchain"


def model_kind(mlmodel: dict) -> str:
    """models-from-code (a source file), pickled (a cloudpickled PythonModel), langchain (MLflow's langchain
    flavor: `lc_model`, from code when model_code_path is set) or other (another flavor's loader)."""
    flavor = pyfunc_flavor(mlmodel)
    flavors = mlmodel.get("flavors") if isinstance(mlmodel.get("flavors"), dict) else {}
    if LANGCHAIN in flavors or flavor.get("loader_module") == "mlflow.langchain":
        return LANGCHAIN
    if flavor.get("model_code_path") or flavor.get("loader_module") == CODE_MODEL_LOADER:
        return "models-from-code"
    if flavor.get("python_model"):
        return "pickled"
    return "other"


def entry_file_facts(mlmodel: dict) -> dict | None:
    """The agent file: MLflow copies `model_code_path` to the artifact root under its own base name."""
    original = pyfunc_flavor(mlmodel).get("model_code_path")
    if not original:
        return None
    # The logged path is the logging machine's (POSIX or Windows): only its last part names the copy.
    name = str(original).replace("\\", "/").rsplit("/", 1)[-1]
    return {"path": name, "model_code_path": str(original)}


def declared_artifacts(mlmodel: dict) -> list[dict]:
    """`flavors.python_function.artifacts: {key: {path, uri}}`, in key order."""
    artifacts = pyfunc_flavor(mlmodel).get("artifacts")
    if not isinstance(artifacts, dict):
        return []
    return [{"key": str(key), "path": str((value if isinstance(value, dict) else {}).get("path", "")),
             "uri": (value if isinstance(value, dict) else {}).get("uri")}
            for key, value in sorted(artifacts.items(), key=lambda item: str(item[0]))]


def artifact_files(mlmodel: dict) -> dict[str, str]:
    """Artifact key → its path under `artifacts/` (keys stored elsewhere are left out)."""
    keys = {}
    for artifact in declared_artifacts(mlmodel):
        path = artifact["path"].replace("\\", "/")
        if path.startswith(f"{ARTIFACTS_DIR}/"):
            keys[artifact["key"]] = path[len(ARTIFACTS_DIR) + 1:]
    return keys


def model_config(mlmodel: dict) -> dict | None:
    """What `log_model(model_config=...)` stored in `flavors.python_function.config`."""
    config = pyfunc_flavor(mlmodel).get("config")
    return config if isinstance(config, dict) else None


def task_of(mlmodel: dict) -> str | None:
    metadata = mlmodel.get("metadata")
    task = metadata.get("task") if isinstance(metadata, dict) else None
    return None if task is None else str(task)


def resource_blocks(mlmodel: dict) -> list[tuple[str, dict]]:
    """MLmodel's resource blocks `{api_version, <target>: {<type>: [entries]}}`, by where they are declared:
    `resources`, and the auth policy's system resources (MLflow writes one or the other)."""
    policy = mlmodel.get("auth_policy")
    system = policy.get("system_auth_policy") if isinstance(policy, dict) else None
    blocks = [("resources", mlmodel.get("resources")),
              ("auth_policy", system.get("resources") if isinstance(system, dict) else None)]
    return [(where, block) for where, block in blocks if isinstance(block, dict)]


def resource_items(block: dict) -> Iterator[tuple[str, str, object]]:
    """(target, resource type, the entry as written) for every entry of one resource block.

    This is the one walk of a block: analyze's facts and the resources step's mapping both come from it.
    """
    for target, types in block.items():
        if target == "api_version" or not isinstance(types, dict):
            continue
        for resource_type, items in types.items():
            for item in items if isinstance(items, list) else [] if items is None else [items]:
                yield str(target), str(resource_type), item


def resource_entries(block: object, declared_in: str) -> list[dict]:
    """One entry per resource of a block, as analyze reports them.

    Types MLflow does not list (yet) are kept with `known: false`, so nothing the model declared is dropped.
    """
    if not isinstance(block, dict):
        return []
    entries = []
    for target, resource_type, item in resource_items(block):
        name = item.get("name") if isinstance(item, dict) else item
        on_behalf = item.get("on_behalf_of_user") if isinstance(item, dict) else None
        entries.append({
            "provider": target,
            "type": resource_type,
            "name": None if name is None else str(name),
            "on_behalf_of_user": bool(on_behalf),
            "known": target == "databricks" and resource_type in RESOURCE_TYPES,
            "declared_in": declared_in,
        })
    return entries


def user_api_scopes(mlmodel: dict) -> list[str]:
    """The user policy's `api_scopes` (on-behalf-of-user access), as written."""
    policy = mlmodel.get("auth_policy")
    user = (policy.get("user_auth_policy") or {}) if isinstance(policy, dict) else {}
    scopes = user.get("api_scopes") if isinstance(user, dict) else None
    return [str(scope) for scope in scopes] if isinstance(scopes, list) else []


def auth_policy_facts(mlmodel: dict) -> dict | None:
    """`auth_policy`: the system policy's resources (the service's own access) and the user policy's scopes."""
    if not isinstance(mlmodel.get("auth_policy"), dict):
        return None
    system = [block for where, block in resource_blocks(mlmodel) if where == "auth_policy"]
    return {
        "system_resources": resource_entries(system[0] if system else None, "auth_policy"),
        "user_api_scopes": user_api_scopes(mlmodel),
    }


def all_resources(mlmodel: dict) -> list[dict]:
    """Resources from `resources` and from the auth policy's system resources."""
    return [entry for where, block in resource_blocks(mlmodel) for entry in resource_entries(block, where)]


def resources_api_version(mlmodel: dict) -> str | None:
    for _, block in resource_blocks(mlmodel):
        if "api_version" in block:
            return str(block["api_version"])
    return None


def mlmodel_facts(mlmodel: dict) -> dict:
    """The facts that come from the MLmodel alone: what `migrate check` can re-derive from its copy in the app."""
    return {
        "mlflow_version": mlmodel.get("mlflow_version"),
        "model_kind": model_kind(mlmodel),
        "loader_module": pyfunc_flavor(mlmodel).get("loader_module"),
        "entry_file": entry_file_facts(mlmodel),
        "task": task_of(mlmodel),
        "resources": all_resources(mlmodel),
        "auth_policy": auth_policy_facts(mlmodel),
        "artifact_keys": [(artifact["key"], artifact["path"]) for artifact in declared_artifacts(mlmodel)],
        "mlmodel_python_version": pyfunc_flavor(mlmodel).get("python_version"),
    }
