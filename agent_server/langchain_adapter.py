"""Serve a LangChain/LangGraph runnable (a model logged with `mlflow.langchain.log_model(lc_model=...)`) through
the Responses protocol that AgentServer speaks.

On Model Serving the runnable took the request as it came, usually `{"messages": [{"role", "content"}, ...]}`,
and answered its own output (a state with `messages`, a message, a string). `migrate code` keeps the module
and its handlers call the functions below, which translate:

- request `input` message items → `{"messages": [{"role", "content"}, ...]}` (developer → system), with the
  request's `custom_inputs` as further top-level keys, as a client of the endpoint sent them;
- the output → one `message` item holding the text of the last AI message (the whole of a string output);
  a state's other keys have no Responses field and are not returned;
- the stream → `runnable.stream(...)`: message chunks (alone or as LangGraph's `(chunk, metadata)`) become
  text deltas and one `response.output_item.done`; pieces that are not chunks (whole states, LangGraph
  updates) are answered like invoke, from the last piece.

The same functions turn the original model's recorded answer into Responses for the smoke test's parity
comparison (MLflow's pyfunc answers a list holding the output, with messages as dicts), so both sides go
through one mapping. They are sync: the handlers run them, and the runnable, in worker threads.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from typing import Any

from mlflow.types.responses import (ResponsesAgentRequest, ResponsesAgentResponse, ResponsesAgentStreamEvent,
                                    create_text_delta, create_text_output_item)

AI_TYPES = ("ai", "AIMessageChunk", "assistant")
CHUNK_TYPES = ("AIMessageChunk",)
TEXT_PARTS = ("input_text", "output_text", "text")
OUTPUT_ITEM_DONE = "response.output_item.done"


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    texts = []
    for part in content or []:
        part = part if isinstance(part, dict) else part.model_dump()
        if part.get("type") in TEXT_PARTS:
            texts.append(part.get("text") or "")
    return "".join(texts)


def runnable_input(request: ResponsesAgentRequest) -> dict[str, Any]:
    """The chat-message input the runnable took on Model Serving, from a Responses request."""
    messages = []
    for item in request.input:
        item = item if isinstance(item, dict) else item.model_dump(exclude_none=True)
        if item.get("type", "message") != "message":
            raise ValueError(f"a LangChain model's input holds chat messages; the request has a {item['type']!r} item")
        role = "system" if item["role"] == "developer" else item["role"]
        messages.append({"role": role, "content": _text(item.get("content"))})
    return {"messages": messages, **(request.custom_inputs or {})}


def _message(value: Any) -> dict | None:
    """A LangChain message (object, or dict as MLflow dumps it, or a chat dict) as {type, text, id}."""
    if isinstance(value, dict):
        kind = value.get("type") or value.get("role")
        if kind is None or "content" not in value:
            return None
        return {"type": kind, "text": _text(value["content"]), "id": value.get("id")}
    if hasattr(value, "type") and hasattr(value, "content"):
        return {"type": value.type, "text": _text(value.content), "id": getattr(value, "id", None)}
    return None


def _last_ai_text(output: Any) -> tuple[str, str | None]:
    if isinstance(output, str):
        return output, None
    message = _message(output)
    if message is not None and message["type"] in AI_TYPES:
        return message["text"], message["id"]
    if isinstance(output, list):
        found = [_message(item) for item in output]
        ai = [item for item in found if item and item["type"] in AI_TYPES]
        if ai:
            return ai[-1]["text"], ai[-1]["id"]
        if len(output) == 1:  # MLflow's pyfunc wraps the output in a list
            return _last_ai_text(output[0])
    if isinstance(output, dict):
        if "messages" in output:
            return _last_ai_text(list(output["messages"]))
        if len(output) == 1:  # a LangGraph update: {node: state}
            return _last_ai_text(next(iter(output.values())))
    raise ValueError(f"the runnable's output has no AI message to answer with: {str(output)[:200]}")


def responses_from_output(output: Any) -> ResponsesAgentResponse:
    text, message_id = _last_ai_text(output)
    return ResponsesAgentResponse(output=[create_text_output_item(text, message_id or f"msg_{uuid.uuid4().hex}")])


def events_from_pieces(pieces: Iterable[Any]) -> Iterator[ResponsesAgentStreamEvent]:
    texts: list[str] = []
    item_id, last, chunked = None, None, False
    for piece in pieces:
        if isinstance(piece, (tuple, list)) and len(piece) == 2 and isinstance(piece[1], dict) \
                and _message(piece[0]) is not None:
            piece = piece[0]  # LangGraph's stream_mode="messages": (chunk, metadata)
        message = _message(piece)
        if message is not None and message["type"] in CHUNK_TYPES:
            chunked = True
            item_id = item_id or message["id"] or f"msg_{uuid.uuid4().hex}"
            if message["text"]:
                texts.append(message["text"])
                yield ResponsesAgentStreamEvent(**create_text_delta(message["text"], item_id))
        else:
            last = piece
    if chunked:
        yield ResponsesAgentStreamEvent(type=OUTPUT_ITEM_DONE, item=create_text_output_item("".join(texts), item_id))
    elif last is not None:
        for item in responses_from_output(last).output:
            yield ResponsesAgentStreamEvent(type=OUTPUT_ITEM_DONE, item=item)


# ---------------------------------------------------------------------------------------------------- handlers' calls


def invoke_runnable(runnable: Any, request: ResponsesAgentRequest) -> ResponsesAgentResponse:
    return responses_from_output(runnable.invoke(runnable_input(request)))


def stream_runnable(runnable: Any, request: ResponsesAgentRequest) -> Iterator[ResponsesAgentStreamEvent]:
    yield from events_from_pieces(runnable.stream(runnable_input(request)))


# ---------------------------------------------------------------------------------------------------- parity


def original_as_responses(original: dict) -> dict:
    """The original model's recorded {invoke, stream} (MLflow pyfunc, JSON) as Responses answers."""
    def plain(events) -> list[dict]:
        return [event.model_dump(exclude_none=True) for event in events]

    invoke = responses_from_output(original["invoke"])
    stream = original.get("stream")
    return {"invoke": invoke.model_dump(exclude_none=True),
            "stream": plain(events_from_pieces([original["invoke"]] if stream is None else stream))}
