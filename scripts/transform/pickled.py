"""A pickled python_model whose class source is in code/: the app constructs the class instead of unpickling.

Analyze read the pickle's opcodes (`scripts.model.pickled`, never loading it) and compared the attributes
it held with what `__init__` and `load_context` set (ANA053/ANA054). When constructing the class rebuilds
them all, the code step writes the entry module the model never had: import the class from its copied
module and register an instance, then migrates it like any models-from-code agent (wrapper mode, since the
class lives in another module). Otherwise it stops with COD082 and the attributes the pickle held.
"""

from __future__ import annotations

from pathlib import Path

from scripts.core.errors import MigrateError
from scripts.core.layout import MigrationLayout
from scripts.model.imports import module_name
from scripts.model.mlmodel import PICKLED_MODEL

CODE_PREFIX = "code/"


def entry_source(agent: dict) -> str:
    module = agent["pickle"]["module"] or module_name(agent["path"].removeprefix(CODE_PREFIX))
    return (f'"""The agent of a pickled model ({PICKLED_MODEL}): `migrate code` builds it by constructing\n'
            f'{agent["name"]} (source: {agent["path"]}), which sets every attribute the pickle held\n'
            f'({", ".join(agent["pickle"]["attributes"]) or "none"}), instead of unpickling it."""\n'
            f"import mlflow\n\nfrom {module} import {agent['name']}\n\n"
            f"mlflow.models.set_model({agent['name']}())\n")


def original_model(layout: MigrationLayout, root: Path, payload: dict, model_config: dict | None):
    from scripts.transform.original import OriginalModel

    agent = payload["agent_class"]
    facts = agent["pickle"]
    if facts["not_rebuilt"] or not facts["constructible"]:
        why = (f"the pickle held {', '.join(facts['not_rebuilt'])}, which neither __init__ nor load_context sets"
               if facts["not_rebuilt"] else f"{agent['name']}.__init__ takes arguments the app cannot know")
        raise MigrateError(f"the pickled {agent['name']} cannot be rebuilt by constructing it: {why} (ANA054; "
                           f"the pickle held {', '.join(facts['attributes']) or 'no attributes'})",
                           "set those attributes in the class's __init__ or load_context, log the agent again from "
                           "code, and download that version; the harness never unpickles a model", code="COD082")
    keys = {}
    for artifact in payload["artifacts"]["declared"]:
        path = artifact["path"].replace("\\", "/")
        if path.startswith("artifacts/"):
            keys[artifact["key"]] = path[len("artifacts/"):]
    return OriginalModel(root, root / PICKLED_MODEL, payload["task"], keys, model_config, agent, entry_source(agent))
