"""Wrapper mode for an agent set_model registered through a factory (`set_model(build_agent())`).

Model Serving served the object the factory returned, built with the factory's arguments; `MyAgent()` built
again would lose them. The module is kept, the registered expression builds the one instance (`AGENT =
build_agent()`, or the name the module already assigned it to), and the handlers call that instance.
"""

from __future__ import annotations

from dataclasses import replace

import libcst as cst

from scripts.transform import agent_class
from scripts.transform.location import AgentLocation, assignment, set_model_argument


def registered(location: AgentLocation) -> tuple[AgentLocation, str | None]:
    """The location with the instance the module already names, or the expression that builds it."""
    if not location.set_model_statements:
        return location, None
    argument = set_model_argument(location.set_model_statements[-1])
    if isinstance(argument, cst.Name):
        return replace(location, instance_name=argument.value), None
    return location, cst.Module([]).code_for_node(argument)


def wrap(module: cst.Module, location: AgentLocation, agent: dict, taken: set[str], artifact_paths: dict[str, str],
         model_config: bool) -> agent_class.AgentModule:
    factory = agent["factory"]
    location, create = registered(location)
    if create is None and location.instance_name:
        # `AGENT = build_agent()` then `set_model(AGENT)`: the assignment stays where it is.
        statement = next((statement for statement in module.body
                          if (assignment(statement) or ("",))[0] == location.instance_name), None)
        location = replace(location, instance_statement=statement)
    wrapped = agent_class.wrap(module, location, f"set_model registers what `{factory['expression']}` returns "
                               f"(a factory): the app builds the agent the same way", taken, artifact_paths,
                               model_config, create=create)
    if agent["found_by"] == "factory" or not agent_class.defines_method(location, "predict_stream"):
        wrapped.predict_stream = None  # nothing says the object streams: stream predict's finished items
    return wrapped
