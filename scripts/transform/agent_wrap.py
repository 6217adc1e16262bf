"""Wrapper mode: the agent class stays as written and one module-level instance serves every request.

Used when extraction could change behaviour (a base class of the user's, `self` passed around, dynamic
attributes, `super()` calls, arguments to `__init__`, ...). The instance is created and loaded with its
artifacts (and the logged model config, which the code step writes to agent_server/model_config.yml) at
import, as Model Serving loaded it once per replica.
"""

from __future__ import annotations

import libcst as cst

from scripts.transform.agent_module import AgentModule
from scripts.transform.agent_names import pick
from scripts.transform.location import AgentLocation


def wrap(module: cst.Module, location: AgentLocation, reason: str, taken: set[str],
         artifact_paths: dict[str, str], model_config: bool = False, create: str | None = None) -> AgentModule:
    """Keep the class; one module-level instance, loaded with its artifacts and config, serves every request.
    `create` is the expression that builds it when set_model registered a factory's result (`build_agent()`)."""
    instance = location.instance_name or pick("AGENT", taken)
    artifacts = ", ".join(f'"{key}": str(Path(__file__).parent / "artifacts" / "{path}")'
                          for key, path in sorted(artifact_paths.items()))
    config = ('ModelConfig(development_config=str(Path(__file__).parent / "model_config.yml")).to_dict()'
              if model_config else "{}")
    load = cst.parse_statement(
        f"{instance}.load_context(PythonModelContext(artifacts={{{artifacts}}}, model_config={config}))\n")
    load = load.with_changes(leading_lines=[cst.EmptyLine(comment=cst.Comment(
        "# Model Serving called load_context once after loading the model; the app does it at import."))])
    create = cst.parse_statement(f"{instance} = {create or location.class_name + '()'}\n")
    new_body: list[cst.BaseStatement] = []
    placed = False
    for statement in module.body:
        if statement in location.set_model_statements:
            if not placed:
                if location.instance_statement is None:
                    new_body.append(create.with_changes(leading_lines=statement.leading_lines))
                new_body.append(load)
                placed = True
            continue
        new_body.append(statement)
    if not placed:
        if location.instance_statement is None:
            new_body.append(create)
        new_body.append(load)
    needs = [("mlflow.pyfunc.model", "PythonModelContext")]
    if artifact_paths or model_config:
        needs.append(("pathlib", "Path"))
    if model_config:
        needs.append(("mlflow.models", "ModelConfig"))
    return AgentModule(module.with_changes(body=new_body), "wrapper", location.class_name, location.interface,
                       [reason], f"{instance}.predict", f"{instance}.predict_stream", False, needs,
                       taken | {instance})
