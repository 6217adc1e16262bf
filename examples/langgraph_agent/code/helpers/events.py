"""Turn LangGraph `stream_mode="updates"` events into Responses stream events."""

import uuid
from typing import Iterable, Iterator

from langchain_core.messages import AIMessage, ToolMessage
from mlflow.types.responses import (
    ResponsesAgentStreamEvent,
    create_function_call_item,
    create_function_call_output_item,
    create_text_output_item,
)


def message_items(message) -> list[dict]:
    if isinstance(message, AIMessage):
        items = [create_function_call_item(id=str(uuid.uuid4()), call_id=call["id"], name=call["name"],
                                           arguments=_json(call["args"]))
                 for call in message.tool_calls]
        if message.content:
            items.append(create_text_output_item(text=str(message.content), id=message.id or str(uuid.uuid4())))
        return items
    if isinstance(message, ToolMessage):
        return [create_function_call_output_item(call_id=message.tool_call_id, output=str(message.content))]
    return []


def graph_updates_to_events(updates: Iterable[dict]) -> Iterator[ResponsesAgentStreamEvent]:
    for update in updates:
        for node_output in update.values():
            for message in node_output.get("messages", []):
                for item in message_items(message):
                    yield ResponsesAgentStreamEvent(type="response.output_item.done", item=item)


def _json(arguments: dict) -> str:
    import json

    return json.dumps(arguments)
