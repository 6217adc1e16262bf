"""Reading and comparing ResponsesAgent answers: SSE parsing, schema problems, and comparisons ids aside.

Used by `migrate smoke` while it talks to a server and by the smoke check, which recomputes every verdict
from the responses the report recorded. Pure functions on JSON values; no I/O.

AgentServer streams `data: {event}` lines and ends with `data: [DONE]`. An exception in the middle of a
stream still arrives after an HTTP 200, as `data: {"error": "..."}` followed by `[DONE]`
(mlflow/genai/agent_server/server.py), so a stream is only good when every event has been read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from scripts.core.schema_registry import validation_errors

DONE = "[DONE]"
RESPONSE_SCHEMA = "responses_agent_response"
EVENT_SCHEMA = "responses_agent_stream_event"
ITEM_DONE = "response.output_item.done"
# Identifiers a server makes up per run (uuid4 item ids, trace ids): compared by where they recur, not by value.
GENERATED_IDS = frozenset({"id", "item_id", "call_id", "trace_id"})
# Per-run values with no structure worth comparing.
IGNORED_KEYS = frozenset({"created_at"})
COMPARISON_MODES = ("exact", "structure")
SHOWN_CHARS = 200


# ---------------------------------------------------------------------------------------------------- SSE


@dataclass
class ParsedStream:
    events: list[Any] = field(default_factory=list)  # the JSON of each `data:` line before [DONE]
    done: bool = False
    malformed: list[str] = field(default_factory=list)  # lines that are not SSE, or data that is not JSON


def parse_sse(text: str) -> ParsedStream:
    """The events of an SSE body. Comment lines and `event:`/`id:`/`retry:` fields are allowed and skipped."""
    parsed = ParsedStream()
    for line in text.splitlines():
        if not line.strip() or line.startswith(":"):
            continue
        if line.startswith(("event:", "id:", "retry:")):
            continue
        if not line.startswith("data:"):
            parsed.malformed.append(f"not an SSE line: {line[:SHOWN_CHARS]}")
            continue
        data = line[len("data:"):].strip()
        if parsed.done:
            parsed.malformed.append(f"data after [DONE]: {data[:SHOWN_CHARS]}")
            continue
        if data == DONE:
            parsed.done = True
            continue
        try:
            parsed.events.append(json.loads(data))
        except json.JSONDecodeError as error:
            parsed.malformed.append(f"data is not JSON ({error.msg}): {data[:SHOWN_CHARS]}")
    return parsed


# ---------------------------------------------------------------------------------------------------- validity


def response_problems(body: Any) -> list[str]:
    """How a non-streaming body breaks ResponsesAgentResponse (empty when it is one)."""
    return validation_errors(body, RESPONSE_SCHEMA)


def event_problems(events: list[Any]) -> list[str]:
    """How each stream event breaks ResponsesAgentStreamEvent, as `event N: json/path: message` lines.

    Error events are reported by `stream_errors`, not here.
    """
    problems = []
    for index, event in enumerate(events):
        if is_error_event(event):
            continue
        problems += [f"event {index}: {line}" for line in validation_errors(event, EVENT_SCHEMA)]
    return problems


def is_error_event(event: Any) -> bool:
    """AgentServer's `{"error": ...}` event, or a Responses `type: error` event."""
    return isinstance(event, dict) and ("error" in event and "type" not in event or event.get("type") == "error")


def stream_errors(events: list[Any]) -> list[str]:
    messages = []
    for event in events:
        if is_error_event(event):
            detail = event.get("error") if "error" in event else event.get("message")
            messages.append(detail if isinstance(detail, str) else json.dumps(detail))
    return messages


def done_items(events: list[Any]) -> list[Any]:
    """The items of the stream's `response.output_item.done` events, in order: the stream's output."""
    return [event.get("item") for event in events if isinstance(event, dict) and event.get("type") == ITEM_DONE]


def stream_custom_outputs(events: list[Any]) -> Any:
    """The last custom_outputs an event carried (None when none did)."""
    found = None
    for event in events:
        if isinstance(event, dict) and event.get("custom_outputs") is not None:
            found = event["custom_outputs"]
    return found


# ---------------------------------------------------------------------------------------------------- comparison


def without_generated_ids(value: Any) -> Any:
    """`value` with each distinct generated id replaced by its order of first appearance (`<id-1>`, ...).

    Two answers then compare equal when their ids differ but link the same way (a function_call_output's
    call_id still names the function_call before it).
    """
    labels: dict[str, str] = {}

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            result = {}
            for key, item in node.items():
                if key in IGNORED_KEYS:
                    continue
                if key in GENERATED_IDS and isinstance(item, str):
                    result[key] = labels.setdefault(item, f"<id-{len(labels) + 1}>")
                else:
                    result[key] = walk(item)
            return result
        if isinstance(node, list):
            return [walk(item) for item in node]
        return node

    return walk(value)


def argument_keys(arguments: Any) -> list[str] | str:
    try:
        parsed = json.loads(arguments) if isinstance(arguments, str) else arguments
    except json.JSONDecodeError:
        return "<arguments are not JSON>"
    return sorted(parsed) if isinstance(parsed, dict) else f"<{type(parsed).__name__}>"


def item_structure(item: Any) -> Any:
    """What must hold against a real LLM, whose text varies: item type, role, content kinds, tool names and keys."""
    if not isinstance(item, dict):
        return f"<{type(item).__name__}>"
    shape: dict[str, Any] = {"type": item.get("type")}
    if item.get("type") == "message":
        shape["role"] = item.get("role", "assistant")
        shape["content"] = [part.get("type") if isinstance(part, dict) else "?" for part in item.get("content") or []]
    elif item.get("type") == "function_call":
        shape["name"] = item.get("name")
        shape["argument_keys"] = argument_keys(item.get("arguments"))
    return shape


def answer_view(output: list[Any], custom_outputs: Any, mode: str) -> dict:
    """What of an answer is compared in `mode`: exact (ids aside) or structure."""
    if mode == "exact":
        return without_generated_ids({"output": output, "custom_outputs": custom_outputs})
    keys = sorted(custom_outputs) if isinstance(custom_outputs, dict) else custom_outputs
    return {"output": [item_structure(item) for item in output], "custom_outputs_keys": keys}


def events_view(events: list[Any], mode: str) -> Any:
    """What of a stream is compared: every event (exact, ids aside) or the done items' structure."""
    if mode == "exact":
        return without_generated_ids(events)
    return [item_structure(item) for item in done_items(events)]


def shown(value: Any) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + "…"


def first_difference(expected: Any, actual: Any, path: str = "$") -> dict | None:
    """The first place two JSON values differ: `{path, expected, actual}`, or None when they are equal."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        for key in list(expected) + [key for key in actual if key not in expected]:
            if key not in actual:
                return {"path": f"{path}.{key}", "expected": shown(expected[key]), "actual": "<missing>"}
            if key not in expected:
                return {"path": f"{path}.{key}", "expected": "<missing>", "actual": shown(actual[key])}
            found = first_difference(expected[key], actual[key], f"{path}.{key}")
            if found:
                return found
        return None
    if isinstance(expected, list) and isinstance(actual, list):
        for index, (left, right) in enumerate(zip(expected, actual)):
            found = first_difference(left, right, f"{path}[{index}]")
            if found:
                return found
        if len(expected) != len(actual):
            index = min(len(expected), len(actual))
            return {"path": f"{path}[{index}]",
                    "expected": shown(expected[index]) if index < len(expected) else "<missing>",
                    "actual": shown(actual[index]) if index < len(actual) else "<missing>"}
        return None
    if expected != actual:
        return {"path": path, "expected": shown(expected), "actual": shown(actual)}
    return None
