"""LangChain mode: a LangChain/LangGraph model from code, its runnable served through the Responses protocol.

There is no agent class to extract or wrap: the module is kept as written, the runnable the last
`mlflow.models.set_model(...)` registered stays in (or becomes) a module-level name, and the handlers
appended hand each request to `agent_server/langchain_adapter.py` (input items → `{"messages": [...]}`,
the last AI message → a message item, the runnable's stream → deltas). The runnable's `invoke`/`stream` are
sync calls that may wait on an LLM, so in both modes they run in worker threads
(`adapted.py`: how such agents are served).
"""

from __future__ import annotations

import libcst as cst

from scripts.core.errors import MigrateError
from scripts.core.findings import Finding
from scripts.transform import adapted, agent_class
from scripts.transform.agent_names import numbered
from scripts.transform.location import set_model_argument

ADAPTER = adapted.Adapter(
    mode="langchain", module="agent_server.langchain_adapter", invoke="invoke_runnable", stream="stream_runnable",
    stream_from_predict=None,
    header="Served by MLflow's AgentServer, which speaks the Responses protocol:\n"
           "agent_server/langchain_adapter.py turns each request into the {\"messages\": [...]} input the\n"
           "runnable took on Model Serving, and its last AI message into the output item. invoke and\n"
           "stream are sync calls, so they run in worker threads (agent_server/sync_bridge.py).")
MODE = ADAPTER.mode


def wrap(module: cst.Module, taken: set[str], entry_name: str) -> agent_class.AgentModule:
    """The module with its set_model calls dropped and the registered runnable in a module-level name."""
    calls = [statement for statement in module.body if set_model_argument(statement) is not None]
    if not calls:
        raise MigrateError(f"{entry_name} calls no mlflow.models.set_model(...) at module level, so the served "
                           "runnable is unknown (ANA052)",
                           "end the original file with `mlflow.models.set_model(graph)`, or write "
                           "agent_server/agent.py by hand", code="COD080")
    argument = set_model_argument(calls[-1])
    if isinstance(argument, cst.Name):
        runnable, replacement = argument.value, None
    else:
        runnable = numbered("RUNNABLE", taken)
        replacement = cst.parse_statement(f"{runnable} = {cst.Module([]).code_for_node(argument)}\n")
    body = []
    for statement in module.body:
        if statement is calls[-1] and replacement is not None:
            body.append(replacement.with_changes(leading_lines=statement.leading_lines))
        elif statement not in calls:
            body.append(statement)
    return agent_class.AgentModule(module.with_changes(body=body), MODE, runnable, "LangChain", [], runnable,
                                   runnable, False, [], taken | {runnable})


def served_finding(agent, where: str) -> Finding:
    return Finding(
        "COD080", "warning", where,
        f"a LangChain model: the runnable `{agent.class_name}` is served through {ADAPTER.path} "
        f"(input items → {{\"messages\": [...]}} plus custom_inputs as top-level keys; the last AI message → "
        f"one message item; streams through the runnable's stream), in worker threads",
        "review that the runnable's output holds its answer as the last AI message (other state keys are not "
        "returned), and tell its clients to send {\"input\": [...]} instead of {\"messages\": [...]}")
