"""Serve a ChatModel (mlflow.pyfunc.ChatModel) through the Responses protocol that AgentServer speaks.

A ChatModel answers `predict(context, messages, params)` with a chat completion (`ChatCompletionResponse`)
and streams `ChatCompletionChunk`s; AgentServer speaks only Responses, and MLflow ships no converter.
`migrate code` keeps the class as written and its handlers call the functions below, which translate:

- request `input` items → `messages` (user/system/assistant text; `function_call` items → an assistant
  message with `tool_calls`; `function_call_output` → a `tool` message with its `tool_call_id`), and
  `ChatParams(custom_inputs=request.custom_inputs)`; sampling parameters (temperature, max_tokens, ...) have
  no Responses request field, so the class's defaults apply;
- the first choice's message → a `message` item (text, with the completion's id) and one `function_call`
  item per tool call; `custom_outputs` as they are; `usage` and the other choices are dropped;
- chunks → one `response.output_text.delta` per text delta (the chunk's id), then the finished message and
  tool calls as `response.output_item.done` items.

`context` is None at predict time: the instance got its context once, in `load_context` (artifacts and
model config), as the app builds it at import. A ChatModel that reads `context` in predict needs that
line changed. The same functions turn the original model's recorded answer (MLflow's pyfunc answers the
completion as a dict) into Responses for the smoke test's parity comparison. They are sync: the handlers
run them, and the ChatModel, in worker threads.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from mlflow.types.llm import ChatMessage, ChatParams, FunctionToolCallArguments, ToolCall
from mlflow.types.responses import (ResponsesAgentRequest, ResponsesAgentResponse, ResponsesAgentStreamEvent,
                                    create_function_call_item, create_text_delta, create_text_output_item)

TEXT_PARTS = ("input_text", "output_text", "text")
OUTPUT_ITEM_DONE = "response.output_item.done"


def _text(content: Any) -> str:
    if isinstance(content, str) or content is None:
        return content or ""
    return "".join(part.get("text") or "" for part in
                   (part if isinstance(part, dict) else part.model_dump() for part in content)
                   if part.get("type") in TEXT_PARTS)


def chat_model_inputs(request: ResponsesAgentRequest) -> tuple[list[ChatMessage], ChatParams]:
    """The `(messages, params)` a ChatModel's predict takes, from a Responses request."""
    messages: list[ChatMessage] = []
    for item in request.input:
        item = item if isinstance(item, dict) else item.model_dump(exclude_none=True)
        kind = item.get("type", "message")
        if kind == "message":
            role = "system" if item["role"] == "developer" else item["role"]
            messages.append(ChatMessage(role=role, content=_text(item.get("content"))))
        elif kind == "function_call":
            call = ToolCall(id=item["call_id"], function=FunctionToolCallArguments(
                name=item["name"], arguments=item["arguments"]))
            if messages and messages[-1].role == "assistant" and messages[-1].tool_calls is not None:
                messages[-1].tool_calls.append(call)
            else:
                messages.append(ChatMessage(role="assistant", content=None, tool_calls=[call]))
        elif kind == "function_call_output":
            messages.append(ChatMessage(role="tool", content=str(item["output"]), tool_call_id=item["call_id"]))
    return messages, ChatParams(custom_inputs=request.custom_inputs)


def _plain(value: Any) -> dict:
    return value.to_dict() if hasattr(value, "to_dict") else value


def _message_items(message: dict, message_id: str) -> list[dict]:
    items = []
    if message.get("content"):
        items.append(create_text_output_item(_text(message["content"]), message_id))
    for call in message.get("tool_calls") or []:
        items.append(create_function_call_item(f"{message_id}_{call['id']}", call["id"],
                                               call["function"]["name"], call["function"]["arguments"]))
    return items


def responses_from_completion(completion: Any) -> ResponsesAgentResponse:
    completion = _plain(completion)
    message_id = completion.get("id") or f"msg_{uuid.uuid4().hex}"
    choices = completion.get("choices") or []
    output = _message_items(choices[0]["message"], message_id) if choices else []
    return ResponsesAgentResponse(output=output, custom_outputs=completion.get("custom_outputs"))


def events_from_chunks(chunks: Iterable[Any]) -> Iterator[ResponsesAgentStreamEvent]:
    texts: list[str] = []
    calls: dict[int, dict] = {}
    message_id, custom_outputs = None, None
    for chunk in chunks:
        chunk = _plain(chunk)
        message_id = message_id or chunk.get("id") or f"msg_{uuid.uuid4().hex}"
        custom_outputs = chunk.get("custom_outputs") or custom_outputs
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            if delta.get("content"):
                texts.append(_text(delta["content"]))
                yield ResponsesAgentStreamEvent(**create_text_delta(texts[-1], message_id))
            for position, call in enumerate(delta.get("tool_calls") or []):
                known = calls.setdefault(call.get("index", position), {"id": None, "function": {
                    "name": "", "arguments": ""}})
                known["id"] = known["id"] or call.get("id")
                function = call.get("function") or {}
                known["function"]["name"] += function.get("name") or ""
                known["function"]["arguments"] += function.get("arguments") or ""
    message = {"content": "".join(texts), "tool_calls": [calls[index] for index in sorted(calls)]}
    items = _message_items(message, message_id or f"msg_{uuid.uuid4().hex}")
    for number, item in enumerate(items):
        last = number == len(items) - 1
        yield ResponsesAgentStreamEvent(type=OUTPUT_ITEM_DONE, item=item,
                                        **({"custom_outputs": custom_outputs} if last and custom_outputs else {}))


def events_from_completion(completion: Any) -> Iterator[ResponsesAgentStreamEvent]:
    response = responses_from_completion(completion)
    for number, item in enumerate(response.output):
        last = number == len(response.output) - 1
        yield ResponsesAgentStreamEvent(type=OUTPUT_ITEM_DONE, item=item, **(
            {"custom_outputs": response.custom_outputs} if last and response.custom_outputs else {}))


# ---------------------------------------------------------------------------------------------------- handlers' calls


def predict_with_chat_model(predict: Callable, request: ResponsesAgentRequest) -> ResponsesAgentResponse:
    messages, params = chat_model_inputs(request)
    return responses_from_completion(predict(None, messages, params))


def stream_with_chat_model(predict_stream: Callable, request: ResponsesAgentRequest
                           ) -> Iterator[ResponsesAgentStreamEvent]:
    messages, params = chat_model_inputs(request)
    yield from events_from_chunks(predict_stream(None, messages, params))


def stream_from_chat_model_predict(predict: Callable, request: ResponsesAgentRequest
                                   ) -> Iterator[ResponsesAgentStreamEvent]:
    messages, params = chat_model_inputs(request)
    yield from events_from_completion(predict(None, messages, params))


# ---------------------------------------------------------------------------------------------------- parity


def original_as_responses(original: dict) -> dict:
    """The original model's recorded {invoke, stream} (MLflow pyfunc, JSON) as Responses answers."""
    def plain(events) -> list[dict]:
        return [event.model_dump(exclude_none=True) for event in events]

    stream = original.get("stream")
    return {"invoke": responses_from_completion(original["invoke"]).model_dump(exclude_none=True),
            "stream": plain(events_from_completion(original["invoke"]) if stream is None
                            else events_from_chunks(stream))}
