"""Agents served through an adapter of `agent_server/` (a ChatAgent, a ChatModel, a LangChain runnable).

AgentServer speaks only the Responses protocol. These agents keep their own protocol, so the handlers
appended to the entry module hand each request to an adapter module shipped with the scaffold, which
translates the request in and the answer out. Their code is sync, so in both modes it runs in worker
threads through `agent_server/sync_bridge.py`. Each kind declares its `Adapter` next to how its code is
kept (`chat_agent.py`, `chat_model.py`, `langchain.py`); a new kind is one more declaration there.
"""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from scripts.transform import agent_class
from scripts.transform.handlers import HandlerPlan

HANDLER_IMPORTS = (("mlflow.genai.agent_server", "invoke"), ("mlflow.genai.agent_server", "stream"),
                   ("mlflow.types.responses", "ResponsesAgentRequest"),
                   ("mlflow.types.responses", "ResponsesAgentResponse"),
                   ("mlflow.types.responses", "ResponsesAgentStreamEvent"),
                   ("collections.abc", "AsyncIterator"),
                   ("agent_server.sync_bridge", "iterate_sync"), ("agent_server.sync_bridge", "run_sync"))


@dataclass(frozen=True)
class Adapter:
    mode: str  # the report's `transform`
    module: str  # the adapter's dotted name in the app
    invoke: str  # adapter function: (predict, request) -> ResponsesAgentResponse
    stream: str  # adapter function: (predict_stream, request) -> stream events
    stream_from_predict: str | None  # adapter function streaming predict's finished items, for agents without
    # a predict_stream of their own (None: the kind always has one)
    header: str  # the comment above the handlers: what the adapter does

    @property
    def path(self) -> str:
        return self.module.replace(".", "/") + ".py"

    @property
    def functions(self) -> tuple[str, ...]:
        """The names the handlers import from the adapter: the entry module must not use them otherwise."""
        return tuple(name for name in (self.invoke, self.stream, self.stream_from_predict) if name)

    def imports_for(self, plan: HandlerPlan) -> list[tuple[str, str]]:
        streaming = self.stream if plan.predict_stream else self.stream_from_predict
        return [*HANDLER_IMPORTS, (self.module, self.invoke), (self.module, streaming)]

    def handler_source(self, plan: HandlerPlan) -> str:
        comment = "".join(f"# {line}\n" for line in self.header.splitlines())
        invoke = (f"@invoke()\nasync def {plan.invoke_name}(request: ResponsesAgentRequest) "
                  f"-> ResponsesAgentResponse:\n"
                  f"    return await run_sync({self.invoke}, {plan.predict}, request)\n")
        stream = (f"@stream()\nasync def {plan.stream_name}(request: ResponsesAgentRequest) "
                  f"-> AsyncIterator[ResponsesAgentStreamEvent]:\n")
        if plan.predict_stream:
            stream += f"    async for event in iterate_sync({self.stream}, {plan.predict_stream}, request):\n"
        else:
            stream += ("    # The agent has no predict_stream of its own: stream predict's finished items.\n"
                       f"    async for event in iterate_sync({self.stream_from_predict}, {plan.predict}, request):\n")
        return f"\n\n{comment}{invoke}\n\n{stream}        yield event\n"


def wrap_class(adapter: Adapter, interface: str, module: cst.Module, location: agent_class.AgentLocation,
               taken: set[str], artifact_paths: dict[str, str], model_config: bool) -> agent_class.AgentModule:
    """The class kept, one instance created and loaded; `predict_stream` is None when the class (and its bases
    in the model's files) leave it to MLflow's base class, whose own raises NotImplementedError."""
    agent = agent_class.wrap(module, location, f"{location.class_name} is a {interface}, served through "
                             f"{adapter.path}", taken, artifact_paths, model_config)
    agent.mode = adapter.mode
    agent.interface = interface
    if not agent_class.defines_method(location, "predict_stream"):
        agent.predict_stream = None
    return agent
