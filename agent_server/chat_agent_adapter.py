"""Serve a ChatAgent (mlflow.pyfunc.ChatAgent) through the Responses protocol that AgentServer speaks.

MLflow's AgentServer accepts only ResponsesAgentRequest and answers ResponsesAgentResponse or
ResponsesAgentStreamEvent; MLflow ships no ChatAgent→Responses converter. `migrate code` keeps the
ChatAgent class as written and its handlers call the functions at the bottom of this module, which
translate:

- request `input` items → `predict(messages, context, custom_inputs)`: user/system/assistant text →
  ChatAgentMessage; `function_call` items → an assistant message with `tool_calls` (consecutive calls in
  one message, as chat completions expects them); `function_call_output` → a `tool` message;
  `context` and `custom_inputs` as they are. Reasoning and other item types have no ChatAgent form and
  are left out.
- ChatAgentResponse `messages` → output items: text → a `message` item (the message's id), `tool_calls`
  → `function_call` items, `tool` messages → `function_call_output` items; `custom_outputs` as they are.
  A Responses output message is always the assistant's, so text of any other role becomes an assistant
  message item; `attachments`, `finish_reason` and `usage` have no Responses field here and are dropped.
- predict_stream's ChatAgentChunks → one `response.output_text.delta` per text chunk, and one
  `response.output_item.done` per message once its chunks (those sharing its id) are complete.

These are plain sync functions: the handlers run them, and the agent, in worker threads
(agent_server/sync_bridge.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from mlflow.types.agent import ChatAgentChunk, ChatAgentMessage, ChatAgentResponse, ChatContext
from mlflow.types.chat import Function, ToolCall
from mlflow.types.responses import (ResponsesAgentRequest, ResponsesAgentResponse, ResponsesAgentStreamEvent,
                                    create_function_call_item, create_function_call_output_item, create_text_delta,
                                    create_text_output_item)

ChatAgentInputs = tuple[list[ChatAgentMessage], ChatContext | None, dict[str, Any] | None]

TEXT_PARTS = ("input_text", "output_text", "text")
# ChatAgentMessage requires a name on tool messages; a Responses function_call_output has none, so it is
# taken from the function_call with the same call_id, or this when the request does not have that call.
UNKNOWN_TOOL = "unknown_tool"
OUTPUT_ITEM_DONE = "response.output_item.done"


# ---------------------------------------------------------------------------------------------------- request


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    texts = []
    for part in content or []:
        part = part if isinstance(part, dict) else part.model_dump()
        if part.get("type") in TEXT_PARTS:
            texts.append(part.get("text") or "")
        elif part.get("type") == "refusal":
            texts.append(part.get("refusal") or "")
        else:
            raise ValueError(f"a ChatAgent takes text messages only; the request has a {part.get('type')!r} part")
    return "".join(texts)


def chat_agent_inputs(request: ResponsesAgentRequest) -> ChatAgentInputs:
    """The `(messages, context, custom_inputs)` a ChatAgent's predict takes, from a Responses request."""
    items = [item if isinstance(item, dict) else item.model_dump(exclude_none=True) for item in request.input]
    tool_names = {item["call_id"]: item["name"] for item in items if item.get("type") == "function_call"}
    messages: list[ChatAgentMessage] = []
    for item in items:
        kind = item.get("type", "message")
        if kind == "message":
            role = "system" if item["role"] == "developer" else item["role"]
            messages.append(ChatAgentMessage(role=role, content=_text(item.get("content")), id=item.get("id")))
        elif kind == "function_call":
            call = ToolCall(id=item["call_id"], function=Function(name=item["name"], arguments=item["arguments"]))
            last = messages[-1] if messages else None
            if last is not None and last.role == "assistant":
                # One assistant turn: its text and the calls that follow it, or calls made in parallel.
                last.tool_calls = [*(last.tool_calls or []), call]
            else:
                messages.append(ChatAgentMessage(role="assistant", content=None, tool_calls=[call],
                                                 id=item.get("id")))
        elif kind == "function_call_output":
            output = item["output"]
            messages.append(ChatAgentMessage(
                role="tool", content=output if isinstance(output, str) else json.dumps(output),
                tool_call_id=item["call_id"], name=tool_names.get(item["call_id"], UNKNOWN_TOOL)))
    return messages, request.context, request.custom_inputs


# ---------------------------------------------------------------------------------------------------- response


def output_items(message: ChatAgentMessage) -> list[dict[str, Any]]:
    """The Responses output items of one finished ChatAgent message."""
    if message.role == "tool":
        return [create_function_call_output_item(message.tool_call_id, message.content or "")]
    items = []
    if message.content or (message.content is not None and not message.tool_calls):
        items.append(create_text_output_item(message.content, message.id))
    for call in message.tool_calls or []:
        # The call id is unique per call; the message id may already name the text item.
        items.append(create_function_call_item(call.id, call.id, call.function.name, call.function.arguments))
    return items


def responses_from_chat(response: ChatAgentResponse | dict[str, Any]) -> ResponsesAgentResponse:
    """A ChatAgentResponse (or the dict a predict may return instead) as a ResponsesAgentResponse."""
    response = ChatAgentResponse.model_validate(response)
    return ResponsesAgentResponse(output=[item for message in response.messages for item in output_items(message)],
                                  custom_outputs=response.custom_outputs)


def events_from_response(response: ChatAgentResponse | dict[str, Any]) -> Iterator[ResponsesAgentStreamEvent]:
    """A whole answer as a stream: one `response.output_item.done` per output item."""
    answer = responses_from_chat(response)
    for index, item in enumerate(answer.output):
        last = index == len(answer.output) - 1
        yield ResponsesAgentStreamEvent(type=OUTPUT_ITEM_DONE, item=item,
                                        custom_outputs=answer.custom_outputs if last else None)


# ---------------------------------------------------------------------------------------------------- stream


@dataclass
class _PendingMessage:
    """The chunks of one message so far (they share its id)."""

    id: str | None
    role: str
    content: str | None = None
    name: str | None = None
    tool_call_id: str | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)
    custom_outputs: dict[str, Any] | None = None

    def add(self, chunk: ChatAgentChunk) -> None:
        delta = chunk.delta
        if delta.content is not None:
            self.content = (self.content or "") + delta.content
        self.name = self.name or delta.name
        self.tool_call_id = self.tool_call_id or delta.tool_call_id
        for call in delta.tool_calls or []:
            known = next((seen for seen in self.tool_calls if seen.id == call.id), None)
            if known is None:
                self.tool_calls.append(call.model_copy(deep=True))
            else:  # the same call streamed in pieces: its arguments arrive in parts
                known.function.arguments += call.function.arguments
        if chunk.custom_outputs is not None:
            self.custom_outputs = chunk.custom_outputs

    def done_events(self) -> list[ResponsesAgentStreamEvent]:
        message = ChatAgentMessage.model_construct(
            role=self.role, content=self.content if self.content is not None or self.tool_calls else "",
            name=self.name, id=self.id, tool_calls=self.tool_calls or None, tool_call_id=self.tool_call_id)
        items = output_items(message)
        return [ResponsesAgentStreamEvent(type=OUTPUT_ITEM_DONE, item=item,
                                          custom_outputs=self.custom_outputs if index == len(items) - 1 else None)
                for index, item in enumerate(items)]


def events_from_chunks(chunks: Iterable[ChatAgentChunk | dict[str, Any]]) -> Iterator[ResponsesAgentStreamEvent]:
    """predict_stream's chunks as Responses stream events: text deltas as they come, and each message's
    finished items when the next message starts (or the stream ends)."""
    pending: _PendingMessage | None = None
    for chunk in chunks:
        chunk = ChatAgentChunk.model_validate(chunk)
        delta = chunk.delta
        if pending is not None and delta.id != pending.id:
            yield from pending.done_events()
            pending = None
        if pending is None:
            pending = _PendingMessage(delta.id, delta.role)
        pending.add(chunk)
        if delta.content and delta.role != "tool":
            yield ResponsesAgentStreamEvent(**create_text_delta(delta.content, delta.id))
    if pending is not None:
        yield from pending.done_events()


# ---------------------------------------------------------------------------------------------------- handlers


def predict_with_chat_agent(predict: Callable[..., Any], request: ResponsesAgentRequest) -> ResponsesAgentResponse:
    """The invoke handler's work: `predict` is the ChatAgent's bound predict."""
    return responses_from_chat(predict(*chat_agent_inputs(request)))


def stream_with_chat_agent(predict_stream: Callable[..., Iterable[Any]],
                           request: ResponsesAgentRequest) -> Iterator[ResponsesAgentStreamEvent]:
    """The stream handler's work: `predict_stream` is the ChatAgent's bound predict_stream."""
    yield from events_from_chunks(predict_stream(*chat_agent_inputs(request)))


def stream_from_chat_predict(predict: Callable[..., Any],
                             request: ResponsesAgentRequest) -> Iterator[ResponsesAgentStreamEvent]:
    """The stream handler's work for a ChatAgent without predict_stream (ChatAgent's own raises
    NotImplementedError): run predict and stream its finished items."""
    yield from events_from_response(predict(*chat_agent_inputs(request)))
