"""LangChain mode: a LangChain/LangGraph model from code, its runnable served through the Responses protocol.

There is no agent class to extract or wrap: the module is kept as written, the runnable the last
`mlflow.models.set_model(...)` registered stays in (or becomes) a module-level name, and the handlers
appended here hand each request to `agent_server/langchain_adapter.py` (input items → `{"messages": [...]}`,
the last AI message → a message item, the runnable's stream → deltas). The runnable's `invoke`/`stream` are
sync calls that may wait on an LLM, so in both modes they run in worker threads
(`agent_server/sync_bridge.py`), as a ChatAgent does.
"""

from __future__ import annotations

import libcst as cst

from scripts.core.errors import MigrateError
from scripts.transform import agent_class
from scripts.transform.handlers import HandlerPlan
from scripts.transform.location import set_model_argument

MODE = "langchain"
ADAPTER_MODULE = "agent_server.langchain_adapter"
ADAPTER_PATH = "agent_server/langchain_adapter.py"
ADAPTER_FUNCTIONS = ("invoke_runnable", "stream_runnable")


def _pick(name: str, taken: set[str]) -> str:
    candidate, number = name, 2
    while candidate in taken:
        candidate, number = f"{name}_{number}", number + 1
    taken.add(candidate)
    return candidate


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
        runnable = _pick("RUNNABLE", taken)
        replacement = cst.parse_statement(f"{runnable} = {cst.Module([]).code_for_node(argument)}\n")
    body = []
    for statement in module.body:
        if statement is calls[-1] and replacement is not None:
            body.append(replacement.with_changes(leading_lines=statement.leading_lines))
        elif statement not in calls:
            body.append(statement)
    return agent_class.AgentModule(module.with_changes(body=body), MODE, runnable, "LangChain", [], runnable,
                                   runnable, False, [], taken | {runnable})


def imports_for(plan: HandlerPlan) -> list[tuple[str, str]]:
    return [("mlflow.genai.agent_server", "invoke"), ("mlflow.genai.agent_server", "stream"),
            ("mlflow.types.responses", "ResponsesAgentRequest"),
            ("mlflow.types.responses", "ResponsesAgentResponse"),
            ("mlflow.types.responses", "ResponsesAgentStreamEvent"),
            ("collections.abc", "AsyncIterator"),
            ("agent_server.sync_bridge", "iterate_sync"), ("agent_server.sync_bridge", "run_sync"),
            *((ADAPTER_MODULE, function) for function in ADAPTER_FUNCTIONS)]


def handler_source(plan: HandlerPlan) -> str:
    header = ("# Served by MLflow's AgentServer, which speaks the Responses protocol:\n"
              "# agent_server/langchain_adapter.py turns each request into the {\"messages\": [...]} input the\n"
              "# runnable took on Model Serving, and its last AI message into the output item. invoke and\n"
              "# stream are sync calls, so they run in worker threads (agent_server/sync_bridge.py).\n")
    return (f"\n\n{header}@invoke()\nasync def {plan.invoke_name}(request: ResponsesAgentRequest) "
            f"-> ResponsesAgentResponse:\n"
            f"    return await run_sync(invoke_runnable, {plan.predict}, request)\n\n\n"
            f"@stream()\nasync def {plan.stream_name}(request: ResponsesAgentRequest) "
            f"-> AsyncIterator[ResponsesAgentStreamEvent]:\n"
            f"    async for event in iterate_sync(stream_runnable, {plan.predict_stream}, request):\n"
            f"        yield event\n")
