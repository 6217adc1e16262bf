"""Chat wrapper mode: a ChatAgent (mlflow.pyfunc.ChatAgent) served through the Responses protocol.

MLflow ships no ChatAgent→Responses converter. The class is kept as written with one module-level instance
(as in wrapper mode, `agent_class.wrap`), and `agent_server/chat_agent_adapter.py` translates each request
into `predict(messages, context, custom_inputs)` and the ChatAgentResponse (or ChatAgentChunks) back
(`adapted.py`: how such agents are served).
"""

from __future__ import annotations

from scripts.core.findings import Finding
from scripts.transform import adapted

ADAPTER = adapted.Adapter(
    mode="chat_wrapper", module="agent_server.chat_agent_adapter", invoke="predict_with_chat_agent",
    stream="stream_with_chat_agent", stream_from_predict="stream_from_chat_predict",
    header="Served by MLflow's AgentServer, which speaks the Responses protocol:\n"
           "agent_server/chat_agent_adapter.py turns each request into the ChatAgent's\n"
           "predict(messages, context, custom_inputs) and its messages back into output items. The\n"
           "ChatAgent is sync code, so it runs in worker threads (agent_server/sync_bridge.py): on the\n"
           "server's event loop it would serialize every request.")
MODE = ADAPTER.mode


def served_finding(agent, where: str) -> Finding:
    return Finding(
        "COD005", "warning", where,
        f"{agent.class_name} is a ChatAgent: it is kept as written, runs in worker threads, and "
        f"{ADAPTER.path} translates each Responses request into its predict(messages, context, "
        f"custom_inputs) and its messages back (assistant text → message items, tool_calls → function_call "
        f"items, tool messages → function_call_output items)"
        + ("" if agent.predict_stream else "; it has no predict_stream, so streams send predict's finished items"),
        "review that the agent's output roles map as expected (text of any role becomes an assistant message "
        "item; attachments are dropped), and tell its clients to send {\"input\": [...]} instead of "
        "{\"messages\": [...]}")
