"""ChatModel mode: a ChatModel (mlflow.pyfunc.ChatModel) served through the Responses protocol.

Converted as a ChatAgent is (`scripts/transform/chat_agent.py`): the class is kept as written with one
module-level instance loaded with its artifacts (`agent_class.wrap`), and the handlers appended here hand
each request to `agent_server/chat_model_adapter.py`, which calls `predict(context, messages, params)` (or
`predict_stream`) and maps the chat completion back. A ChatModel is sync code, so in both modes it runs in
worker threads through `agent_server/sync_bridge.py`.
"""

from __future__ import annotations

import libcst as cst

from scripts.transform import agent_class
from scripts.transform.handlers import HandlerPlan

MODE = "chat_model"
ADAPTER_MODULE = "agent_server.chat_model_adapter"
ADAPTER_PATH = "agent_server/chat_model_adapter.py"
ADAPTER_FUNCTIONS = ("predict_with_chat_model", "stream_with_chat_model", "stream_from_chat_model_predict")


def wrap(module: cst.Module, location: agent_class.AgentLocation, taken: set[str], artifact_paths: dict[str, str],
         model_config: bool) -> agent_class.AgentModule:
    """The class kept, one instance created and loaded; `predict_stream` is None when the class (and its bases
    in the model's files) leave it to ChatModel, whose own raises NotImplementedError."""
    agent = agent_class.wrap(module, location, f"{location.class_name} is a ChatModel, served through "
                             f"{ADAPTER_PATH}", taken, artifact_paths, model_config)
    agent.mode = MODE
    agent.interface = "ChatModel"
    if not agent_class.defines_method(location, "predict_stream"):
        agent.predict_stream = None
    return agent


def imports_for(plan: HandlerPlan) -> list[tuple[str, str]]:
    functions = ["predict_with_chat_model",
                 "stream_with_chat_model" if plan.predict_stream else "stream_from_chat_model_predict"]
    return [("mlflow.genai.agent_server", "invoke"), ("mlflow.genai.agent_server", "stream"),
            ("mlflow.types.responses", "ResponsesAgentRequest"),
            ("mlflow.types.responses", "ResponsesAgentResponse"),
            ("mlflow.types.responses", "ResponsesAgentStreamEvent"),
            ("collections.abc", "AsyncIterator"),
            ("agent_server.sync_bridge", "iterate_sync"), ("agent_server.sync_bridge", "run_sync"),
            *((ADAPTER_MODULE, function) for function in functions)]


def handler_source(plan: HandlerPlan) -> str:
    header = ("# Served by MLflow's AgentServer, which speaks the Responses protocol:\n"
              "# agent_server/chat_model_adapter.py turns each request into the ChatModel's\n"
              "# predict(context, messages, params) and its chat completion back into output items. The\n"
              "# ChatModel is sync code, so it runs in worker threads (agent_server/sync_bridge.py).\n")
    invoke = (f"@invoke()\nasync def {plan.invoke_name}(request: ResponsesAgentRequest) "
              f"-> ResponsesAgentResponse:\n"
              f"    return await run_sync(predict_with_chat_model, {plan.predict}, request)\n")
    signature = (f"@stream()\nasync def {plan.stream_name}(request: ResponsesAgentRequest) "
                 f"-> AsyncIterator[ResponsesAgentStreamEvent]:\n")
    if plan.predict_stream:
        body = (f"    async for event in iterate_sync(stream_with_chat_model, {plan.predict_stream}, request):\n"
                f"        yield event\n")
    else:
        body = (f"    # The ChatModel has no predict_stream of its own: stream predict's finished items.\n"
                f"    async for event in iterate_sync(stream_from_chat_model_predict, {plan.predict}, request):\n"
                f"        yield event\n")
    return f"\n\n{header}{invoke}\n\n{signature}{body}"
