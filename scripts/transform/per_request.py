"""The agent built per request, when its request path writes its own attributes (or the reason it cannot be).

On Model Serving one model instance answers one request at a time, so `self._tools_dict = ...` in
`predict_stream` is private to the request. In an App the server runs many requests at once: one module-level
instance would hand one user's tools (and the credentials they close over) to another. When analyze found
such writes (`state.request_writes`, kind "instance") and building the agent is cheap (`state.construction`:
no blocking call, file read, model load or shared write in `__init__`/`load_context`), the handlers build a
fresh instance per request through a factory written here. Otherwise the code step refuses (COD050), and
writes to module globals or class attributes per request are refused in any case (COD051): a fresh instance
does not make them private.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst

from scripts.transform.location import AgentLocation, assignment
from scripts.transform.agent_names import numbered
from scripts.transform.modules import dotted

PER_REQUEST, REFUSED, STATELESS = "per_request", "refused", "stateless"


@dataclass
class RequestStatePlan:
    """What analyze found, and what the code step does about it."""

    instance_writes: list[dict] = field(default_factory=list)
    shared_writes: list[dict] = field(default_factory=list)  # module globals, class attributes
    guarded_writes: list[dict] = field(default_factory=list)  # under a lock: shared on purpose (COD053)
    costs: list[dict] = field(default_factory=list)  # why building per request is not cheap
    decision: str = STATELESS
    factory: str | None = None  # the module function the handlers call for a fresh agent

    def facts(self) -> dict:
        return {"decision": self.decision, "factory": self.factory, "instance_writes": self.instance_writes,
                "shared_writes": self.shared_writes, "guarded_writes": self.guarded_writes,
                "construction_costs": self.costs}


def plan_request_state(state: dict) -> RequestStatePlan:
    """From analyze's `state`: per request when the request path writes `self.*` and building is cheap."""
    writes = [write for write in state.get("request_writes", []) if not write.get("guarded")]
    construction = state.get("construction") or {"cheap": False, "costs": []}
    plan = RequestStatePlan([write for write in writes if write["kind"] == "instance"],
                            [write for write in writes if write["kind"] != "instance"],
                            [write for write in state.get("request_writes", []) if write.get("guarded")],
                            list(construction["costs"]))
    if plan.instance_writes:
        plan.decision = PER_REQUEST if construction["cheap"] else REFUSED
    return plan


def lines_of(writes: list[dict]) -> str:
    return "; ".join(f"{write['path']}:{write['line']} {write['attribute']} (in {write['function']})"
                     for write in writes)


def extraction_refused(plan: RequestStatePlan) -> str:
    """Why the class is kept (wrapper mode): extracted, `self.x` would become a module global of every request."""
    first = plan.instance_writes[0]
    return (f"{first['function']} writes self.{first['attribute']} per request; extracted, it would become a "
            "module global shared by every request")


def construction_call(location: AgentLocation) -> str | None:
    """How the module builds the agent (`SalesAgent()`, `SalesAgent(max_turns=3)`), when it can be repeated:
    a call of the class whose arguments call nothing (a call there would run again per request)."""
    if location.instance_statement is None:
        return f"{location.class_name}()"
    value = assignment(location.instance_statement)[1]
    if not (isinstance(value, cst.Call) and dotted(value.func) == location.class_name):
        return None
    calls = []

    class Calls(cst.CSTVisitor):
        def visit_Call(self, node):
            calls.append(node)

    for argument in value.args:
        argument.visit(Calls())
    return None if calls else cst.Module([]).code_for_node(value)


def factory_source(plan: RequestStatePlan, class_name: str, call: str, taken: set[str],
                   artifact_paths: dict[str, str], model_config: bool) -> str:
    """The module-level context and the factory the handlers call; sets `plan.factory`."""
    context = numbered("_REQUEST_AGENT_CONTEXT", taken)
    plan.factory = numbered("new_request_agent", taken)
    artifacts = ", ".join(f'"{key}": str(Path(__file__).parent / "artifacts" / "{path}")'
                          for key, path in sorted(artifact_paths.items()))
    config = ('ModelConfig(development_config=str(Path(__file__).parent / "model_config.yml")).to_dict()'
              if model_config else "{}")
    first = plan.instance_writes[0]
    return (f"\n\n# {first['function']} writes self.{first['attribute']} per request ({first['path']}:{first['line']}"
            f"{' and more' if len(plan.instance_writes) > 1 else ''}). Model Serving ran one request per instance at\n"
            f"# a time; the app runs many at once, so each request gets its own {class_name} (building one is cheap:\n"
            f"# `migrate analyze` found no blocking call, file read or model load in __init__/load_context).\n"
            f"{context} = PythonModelContext(artifacts={{{artifacts}}}, model_config={config})\n\n\n"
            f"def {plan.factory}() -> {class_name}:\n"
            f"    agent = {call}\n"
            f"    agent.load_context({context})\n"
            f"    return agent\n")


REQUEST_AGENT = "request_agent"  # the handlers' local name for the agent of their request


def served_by_request_agent(call: str | None) -> str | None:
    """`AGENT.predict` → `request_agent.predict`: the handler calls its own request's agent."""
    return None if call is None else f"{REQUEST_AGENT}.{call.rpartition('.')[2]}"


class _BuildPerRequest(cst.CSTTransformer):
    """Each handler that calls `request_agent.<method>` first builds it: `request_agent = new_request_agent()`."""

    def __init__(self, factory: str):
        self.factory = factory

    def leave_FunctionDef(self, original_node, updated_node):
        uses = []

        class Uses(cst.CSTVisitor):
            def visit_Name(self, node):
                if node.value == REQUEST_AGENT:
                    uses.append(node)

        original_node.body.visit(Uses())
        if not uses:
            return updated_node
        build = cst.parse_statement(f"{REQUEST_AGENT} = {self.factory}()  # this request's own agent\n")
        return updated_node.with_changes(body=updated_node.body.with_changes(
            body=[build, *updated_node.body.body]))


def build_in_handlers(handlers_source: str, factory: str) -> str:
    """The handlers' source with the per-request agent built at the top of each one that serves it."""
    return cst.parse_module(handlers_source).visit(_BuildPerRequest(factory)).code
