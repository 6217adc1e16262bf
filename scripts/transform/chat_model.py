"""ChatModel mode: a ChatModel (mlflow.pyfunc.ChatModel) served through the Responses protocol.

Converted as a ChatAgent is (`chat_agent.py`): the class is kept as written with one module-level instance
loaded with its artifacts, and `agent_server/chat_model_adapter.py` calls `predict(context, messages,
params)` (or `predict_stream`) and maps the chat completion back (`adapted.py`: how such agents are served).
"""

from __future__ import annotations

from scripts.core.findings import Finding
from scripts.transform import adapted

ADAPTER = adapted.Adapter(
    mode="chat_model", module="agent_server.chat_model_adapter", invoke="predict_with_chat_model",
    stream="stream_with_chat_model", stream_from_predict="stream_from_chat_model_predict",
    header="Served by MLflow's AgentServer, which speaks the Responses protocol:\n"
           "agent_server/chat_model_adapter.py turns each request into the ChatModel's\n"
           "predict(context, messages, params) and its chat completion back into output items. The\n"
           "ChatModel is sync code, so it runs in worker threads (agent_server/sync_bridge.py).")
MODE = ADAPTER.mode


def served_finding(agent, where: str) -> Finding:
    return Finding(
        "COD081", "warning", where,
        f"{agent.class_name} is a ChatModel: it is kept as written, runs in worker threads, and "
        f"{ADAPTER.path} translates each Responses request into its predict(context, messages, "
        f"params) (params carry custom_inputs only; context is None) and its chat completion back (the first "
        f"choice's text → a message item, tool_calls → function_call items)"
        + ("" if agent.predict_stream else "; it has no predict_stream, so streams send predict's finished items"),
        "check that predict reads no `context` (it got artifacts in load_context) and needs no sampling "
        "parameters from the request; tell its clients to send {\"input\": [...]} instead of "
        "{\"messages\": [...]}")
