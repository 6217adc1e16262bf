"""The stand-in's LLM: OpenAI-compatible chat completions that are deterministic (same request, same answer).

What the example agents need from a model: a text answer that depends on the question, a tool call when
tools are offered and no tool result has come back yet, and a final answer that uses the tool's result.
Streaming follows OpenAI's chunk format so the `openai` client, databricks-openai and databricks-langchain
parse it unchanged.
"""

from __future__ import annotations

import hashlib
import json

# A fixed creation time: a timestamp that changes per call would make equal requests differ.
CREATED = 1_700_000_000
STREAM_PIECE = 12  # characters per streamed content delta


def request_digest(body: dict) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def message_text(message: dict) -> str:
    content = message.get("content")
    if isinstance(content, list):  # content parts: [{"type": "text", "text": ...}]
        return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return content or ""


def sample_value(schema: dict):
    """A deterministic value of the JSON-schema type a tool parameter asks for."""
    kind = schema.get("type")
    if "enum" in schema:
        return schema["enum"][0]
    return {"string": "stand-in", "integer": 1, "number": 1, "boolean": True, "array": [],
            "object": {}}.get(kind, "stand-in")


def tool_arguments(tool: dict) -> dict:
    parameters = tool.get("function", {}).get("parameters") or {}
    properties = parameters.get("properties") or {}
    return {name: sample_value(schema) for name, schema in properties.items()}


def choose_tool(tools: list[dict], question: str) -> dict:
    """The tool whose name the question mentions, else the first: lets an example steer the model."""
    for tool in tools:
        name = tool.get("function", {}).get("name", "")
        if name and name in question:
            return tool
    return tools[0]


def answer(body: dict) -> dict:
    """The assistant message (and finish reason) the stand-in gives for a chat-completions request."""
    messages = body.get("messages") or []
    tools = [tool for tool in body.get("tools") or [] if tool.get("type", "function") == "function"]
    last = messages[-1] if messages else {}
    question = next((message_text(m) for m in reversed(messages) if m.get("role") == "user"), "")
    if tools and last.get("role") != "tool" and body.get("tool_choice") != "none":
        tool = choose_tool(tools, question)
        call = {
            "id": "call_" + request_digest(body)[:16],
            "type": "function",
            "function": {"name": tool["function"]["name"], "arguments": json.dumps(tool_arguments(tool))},
        }
        return {"message": {"role": "assistant", "content": None, "tool_calls": [call]},
                "finish_reason": "tool_calls"}
    if last.get("role") == "tool":
        text = f"stand-in answer to: {question} (using the tool result: {message_text(last)})"
    else:
        text = f"stand-in answer to: {question}"
    return {"message": {"role": "assistant", "content": text}, "finish_reason": "stop"}


def usage(body: dict, reply: dict) -> dict:
    prompt = sum(len(message_text(m).split()) for m in body.get("messages") or [])
    completion = len((reply["message"].get("content") or "").split())
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def completion(body: dict, model: str) -> dict:
    reply = answer(body)
    return {
        "id": "chatcmpl-" + request_digest(body)[:24],
        "object": "chat.completion",
        "created": CREATED,
        "model": model,
        "choices": [{"index": 0, "message": reply["message"], "finish_reason": reply["finish_reason"]}],
        "usage": usage(body, reply),
    }


def completion_chunks(body: dict, model: str) -> list[dict]:
    """The same answer as `completion`, cut into `chat.completion.chunk` objects."""
    reply = answer(body)
    envelope = {"id": "chatcmpl-" + request_digest(body)[:24], "object": "chat.completion.chunk",
                "created": CREATED, "model": model}

    def chunk(delta: dict, finish_reason: str | None = None) -> dict:
        return {**envelope, "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}

    chunks = [chunk({"role": "assistant", "content": ""})]
    message = reply["message"]
    content = message.get("content") or ""
    for start in range(0, len(content), STREAM_PIECE):
        chunks.append(chunk({"content": content[start:start + STREAM_PIECE]}))
    for index, call in enumerate(message.get("tool_calls") or []):
        chunks.append(chunk({"tool_calls": [{"index": index, "id": call["id"], "type": "function",
                                             "function": {"name": call["function"]["name"], "arguments": ""}}]}))
        arguments = call["function"]["arguments"]
        for start in range(0, len(arguments), STREAM_PIECE):
            chunks.append(chunk({"tool_calls": [{"index": index,
                                                 "function": {"arguments": arguments[start:start + STREAM_PIECE]}}]}))
    chunks.append(chunk({}, reply["finish_reason"]))
    return chunks
