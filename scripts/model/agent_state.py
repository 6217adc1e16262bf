"""The agent's state facts for analyze: request-path writes and what building it costs, from the model's files.

The model's parsed files (`scripts.model.source_file.SourceFile`: the entry file, run as `__main__`, and the
code/ modules by import name) become one program; analyze's agent class is found in it by name and path.
The analyze check calls the same function on the same files to verify the report (ANA032).
"""

from __future__ import annotations

from scripts.model.parsed_modules import parsed_module
from scripts.model.construction import construction_costs
from scripts.model.program import ClassKey, Program
from scripts.model.request_state import REQUEST_METHODS, StateWrite, method_frames, state_writes


ENTRY_MODULE = "__main__"  # MLflow runs the entry file as a script


def model_program(sources) -> Program:
    """The program of the model's parsed files (`scripts.model.source_file.SourceFile`), by import name."""
    modules = {}
    for source in sources:
        if source.tree is not None:
            name = source.module or ENTRY_MODULE
            modules[name] = parsed_module(source.tree, name, source.path, source.is_package, source.nodes)
    return Program(modules)


def agent_key(program: Program, agent: dict) -> ClassKey | None:
    """analyze's agent class (`{"name", "path"}`) as a key of the program."""
    for name, module in program.modules.items():
        if module.path == agent["path"] and (name, agent["name"]) in program.classes:
            return name, agent["name"]
    return None


def agent_request_writes(program: Program, agent: ClassKey) -> list[StateWrite]:
    return state_writes(program, method_frames(program, agent, REQUEST_METHODS))


def agent_state_facts(sources, agent: dict | None) -> tuple[list[dict], dict | None]:
    """analyze.json's `state.request_writes` and `state.construction` for the model's parsed files (`SourceFile`s)
    and analyze's agent class; ([], None) when there is no class to follow."""
    program = model_program(sources)
    key = agent_key(program, agent) if agent else None
    if key is None:
        return [], None
    costs = construction_costs(program, key)
    lines = {source.path: source for source in sources}
    for cost in costs:
        cost["text"] = lines[cost["path"]].line(cost["line"])
    return [write.facts() for write in agent_request_writes(program, key)], {"cheap": not costs, "costs": costs}
