"""The `@invoke`/`@stream` functions appended to the entry module, for sync and async mode.

Both modes write `async def` handlers: MLflow's AgentServer runs a sync handler on its event loop, so a
slow sync agent would serialize every request (mlflow/mlflow#23953). Sync mode hands the agent's sync code
to `agent_server/sync_bridge.py` (worker threads, request context copied); async mode awaits the agent's
own async code, and its invoke collects the stream's finished items as ResponsesAgent.predict does.
"""

from __future__ import annotations

from dataclasses import dataclass

OUTPUT_ITEM_DONE = "response.output_item.done"


@dataclass(frozen=True)
class HandlerPlan:
    mode: str  # "sync" | "async"
    predict: str | None  # the callable for one answer, e.g. `predict` or `AGENT.predict`
    predict_stream: str | None  # the callable for the event stream
    invoke_name: str = "invoke_handler"
    stream_name: str = "stream_handler"
    refuse: str | None = None  # ChatAgent/ChatModel: handlers that explain what is left to do
    native_async: bool = False  # predict/predict_stream name the agent's own async methods (async_native.py)
    custom_outputs: str | None = None  # async invoke: what the class's predict returned as custom_outputs
    # (an expression of the request, custom_outputs.py)


def imports_for(plan: HandlerPlan) -> list[tuple[str, str]]:
    imports = [("mlflow.genai.agent_server", "invoke"), ("mlflow.genai.agent_server", "stream"),
               ("mlflow.types.responses", "ResponsesAgentRequest"),
               ("mlflow.types.responses", "ResponsesAgentResponse"),
               ("mlflow.types.responses", "ResponsesAgentStreamEvent"),
               ("collections.abc", "AsyncIterator")]
    if plan.mode == "sync" and plan.refuse is None and plan.native_async:
        imports += [("agent_server.loop_bridge", "iterate_async"), ("agent_server.loop_bridge", "run_async")]
    elif plan.mode == "sync" and plan.refuse is None:
        imports += [("agent_server.sync_bridge", "iterate_sync"), ("agent_server.sync_bridge", "run_sync")]
    elif plan.predict and "." in plan.predict and not plan.predict_stream and not plan.native_async:
        imports.append(("asyncio", None))
    return imports


def handler_source(plan: HandlerPlan) -> str:
    invoke_signature = (f"@invoke()\nasync def {plan.invoke_name}(request: ResponsesAgentRequest) "
                        f"-> ResponsesAgentResponse:\n")
    stream_signature = (f"@stream()\nasync def {plan.stream_name}(request: ResponsesAgentRequest) "
                        f"-> AsyncIterator[ResponsesAgentStreamEvent]:\n")
    if plan.refuse is not None:
        return (f"\n\nNOT_CONVERTED = {plan.refuse!r}\n\n\n"
                f"{invoke_signature}    raise NotImplementedError(NOT_CONVERTED)\n\n\n"
                f"{stream_signature}    raise NotImplementedError(NOT_CONVERTED)\n"
                f"    yield  # an async generator, as AgentServer expects of a stream handler\n")
    if plan.native_async:
        return native_async_source(plan, invoke_signature, stream_signature)
    if plan.mode == "sync":
        header = ("# Served by MLflow's AgentServer. The agent's code is sync, so it runs in worker threads\n"
                  "# (agent_server/sync_bridge.py): a sync handler would run on the server's event loop and\n"
                  "# serialize every request.\n")
        invoke_body = f"    return await run_sync({plan.predict}, request)\n"
        if plan.predict_stream:
            stream_body = (f"    async for event in iterate_sync({plan.predict_stream}, request):\n"
                           f"        yield event\n")
        else:
            stream_body = (f"    # The agent has no predict_stream: stream its answer as finished items.\n"
                           f"    response = ResponsesAgentResponse.model_validate(await run_sync({plan.predict}, request))\n"
                           f"    for item in response.output:\n"
                           f"        yield ResponsesAgentStreamEvent(type=\"{OUTPUT_ITEM_DONE}\", item=item)\n")
        return f"\n\n{header}{invoke_signature}{invoke_body}\n\n{stream_signature}{stream_body}"
    header = ("# Served by MLflow's AgentServer on its event loop: every call below must be async (the code\n"
              "# report lists the blocking calls left to convert).\n")
    if plan.predict_stream:
        invoke_body = (f"    # One answer is the stream's finished items, as ResponsesAgent.predict builds it.\n"
                       f"    outputs = []\n"
                       f"    async for event in {plan.stream_name}(request):\n"
                       f"        event = ResponsesAgentStreamEvent.model_validate(event)\n"
                       f"        if event.type == \"{OUTPUT_ITEM_DONE}\":\n"
                       f"            outputs.append(event.item)\n")
        if plan.custom_outputs:  # what the class's own predict added (scripts/transform/custom_outputs.py)
            invoke_body += (f"    # The agent's predict returned these custom_outputs with the same items.\n"
                            f"    return ResponsesAgentResponse(output=outputs, custom_outputs={plan.custom_outputs})\n")
        else:
            invoke_body += "    return ResponsesAgentResponse(output=outputs)\n"
        if plan.predict_stream.endswith(".predict_stream") and "." in plan.predict_stream:
            # Wrapper mode: the class's predict_stream is still a sync generator until it is converted.
            stream_body = (f"    for event in {plan.predict_stream}(request):\n"
                           f"        yield event\n")
        else:
            stream_body = (f"    async for event in {plan.predict_stream}(request):\n"
                           f"        yield event\n")
    else:
        # A kept class's sync predict runs in a worker thread (context copied), never on the event loop.
        call = (f"await {plan.predict}(request)" if "." not in plan.predict
                else f"await asyncio.to_thread({plan.predict}, request)")
        invoke_body = f"    return {call}\n"
        stream_body = (f"    response = ResponsesAgentResponse.model_validate({call})\n"
                       f"    for item in response.output:\n"
                       f"        yield ResponsesAgentStreamEvent(type=\"{OUTPUT_ITEM_DONE}\", item=item)\n")
    return f"\n\n{header}{invoke_signature}{invoke_body}\n\n{stream_signature}{stream_body}"


def native_async_source(plan: HandlerPlan, invoke_signature: str, stream_signature: str) -> str:
    """Handlers calling the agent's own async methods: awaited on the server's loop in async mode, on the
    shared background loop of agent_server/loop_bridge.py in sync mode (its code may still block)."""
    if plan.mode == "async":
        header = ("# Served by MLflow's AgentServer on its event loop: the agent is async-native, so its async\n"
                  "# methods are awaited here directly (its sync wrappers started a loop per call).\n")
        call, iterate = f"await {plan.predict}(request)", f"{plan.predict_stream}(request)"
    else:
        header = ("# Served by MLflow's AgentServer. The agent is async-native but its code is not converted, so\n"
                  "# its async methods run on one shared background loop (agent_server/loop_bridge.py), never a\n"
                  "# loop per request and never on the server's loop.\n")
        call, iterate = f"await run_async({plan.predict}, request)", f"iterate_async({plan.predict_stream}, request)"
    collect = (f"    outputs = []\n"
               f"    async for event in {plan.stream_name}(request):\n"
               f"        event = ResponsesAgentStreamEvent.model_validate(event)\n"
               f"        if event.type == \"{OUTPUT_ITEM_DONE}\":\n"
               f"            outputs.append(event.item)\n"
               f"    return ResponsesAgentResponse(output=outputs)\n")
    invoke_body = f"    return {call}\n" if plan.predict else collect
    if plan.predict_stream:
        stream_body = f"    async for event in {iterate}:\n        yield event\n"
    else:
        stream_body = (f"    response = ResponsesAgentResponse.model_validate({call})\n"
                       f"    for item in response.output:\n"
                       f"        yield ResponsesAgentStreamEvent(type=\"{OUTPUT_ITEM_DONE}\", item=item)\n")
    return f"\n\n{header}{invoke_signature}{invoke_body}\n\n{stream_signature}{stream_body}"
