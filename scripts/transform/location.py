"""Where, in the entry module's syntax tree, the agent class that analyze named lives.

The code step does not look for the agent again: analyze's report says which class it is, what it derives
from and which methods its chain defines (`scripts.model.agent_class`, the one locator). This module only
finds that class's statements in the libcst tree the transform rewrites: the class definition (when it is
defined in the entry file), the instance it is registered as, and the `set_model(...)` calls to drop.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst

from scripts.transform.modules import dotted

INTERFACES = ("ResponsesAgent", "ChatAgent", "ChatModel", "PythonModel")


@dataclass
class AgentLocation:
    class_name: str
    class_node: cst.ClassDef | None  # None when the class is imported from a code/ module
    interface: str | None  # "ResponsesAgent", "ChatAgent", ...; None when the chain leaves the model's files
    found_by: str  # "set_model" | "base_class", as analyze found it
    instance_name: str | None  # `AGENT` in `AGENT = MyAgent()`
    instance_statement: cst.SimpleStatementLine | None
    set_model_statements: list[cst.SimpleStatementLine] = field(default_factory=list)
    chain: list[str] = field(default_factory=list)  # the user's classes between it and the interface
    methods: set[str] = field(default_factory=set)  # agent methods defined by the class or its chain


def set_model_argument(statement: cst.CSTNode) -> cst.BaseExpression | None:
    if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
        return None
    expression = statement.body[0]
    if not (isinstance(expression, cst.Expr) and isinstance(expression.value, cst.Call)):
        return None
    call = expression.value
    if (dotted(call.func) or "").rsplit(".", 1)[-1] != "set_model":
        return None
    for argument in call.args:
        if argument.keyword is None or argument.keyword.value == "model":
            return argument.value
    return None


def assignment(statement: cst.CSTNode) -> tuple[str, cst.BaseExpression] | None:
    if isinstance(statement, cst.SimpleStatementLine) and len(statement.body) == 1:
        small = statement.body[0]
        if (isinstance(small, cst.Assign) and len(small.targets) == 1
                and isinstance(small.targets[0].target, cst.Name)):
            return small.targets[0].target.value, small.value
        if isinstance(small, cst.AnnAssign) and isinstance(small.target, cst.Name) and small.value is not None:
            return small.target.value, small.value
    return None


def _creates(value: cst.BaseExpression, class_name: str) -> bool:
    return isinstance(value, cst.Call) and dotted(value.func) == class_name


def _instance(module: cst.Module, class_name: str, set_model_statements: list) -> tuple[str | None, object]:
    """The module-level name holding the agent: what the last set_model registers, else any `X = Class()`."""
    assignments = {}
    for statement in module.body:
        found = assignment(statement)
        if found:
            assignments[found[0]] = (found[1], statement)
    for statement in reversed(set_model_statements):  # the last registration wins when the file runs
        argument = set_model_argument(statement)
        if isinstance(argument, cst.Name) and argument.value in assignments \
                and _creates(assignments[argument.value][0], class_name):
            return argument.value, assignments[argument.value][1]
    return next(((name, statement) for name, (value, statement) in assignments.items()
                 if _creates(value, class_name)), (None, None))


def locate_agent(module: cst.Module, agent: dict) -> AgentLocation:
    """The statements of the class analyze reported (`agent` is analyze.json's `agent_class`)."""
    class_name = agent["name"]
    node = next((statement for statement in module.body
                 if isinstance(statement, cst.ClassDef) and statement.name.value == class_name), None)
    set_model_statements = [statement for statement in module.body if set_model_argument(statement) is not None]
    instance_name, instance_statement = _instance(module, class_name, set_model_statements)
    interface = agent["base"] if agent["base"] in INTERFACES else None
    chain = agent["base_chain"][1:-1] if interface else agent["base_chain"][1:]
    methods = {name for name, method in agent["methods"].items() if method.get("present")}
    return AgentLocation(class_name, node, interface, agent["found_by"], instance_name, instance_statement,
                         set_model_statements, chain, methods)


def defines_method(location: AgentLocation, method: str) -> bool:
    """Whether the class or a base of it defines `method` (True when the chain leaves the model's files)."""
    return method in location.methods or location.interface is None
