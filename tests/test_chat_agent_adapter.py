"""agent_server/chat_agent_adapter.py on hand-made ChatAgent values: requests in, answers and streams out,
every output checked against the Responses schemas the smoke step uses."""

from __future__ import annotations

import json

import pytest
from mlflow.pyfunc import ChatAgent
from mlflow.types.agent import ChatAgentChunk, ChatAgentMessage, ChatAgentResponse, ChatContext
from mlflow.types.responses import ResponsesAgentRequest

from agent_server.chat_agent_adapter import (chat_agent_inputs, events_from_chunks, events_from_response,
                                             predict_with_chat_agent, responses_from_chat, stream_from_chat_predict,
                                             stream_with_chat_agent)
from scripts.core.schema_registry import validation_errors


def tool_call(call_id: str, name: str, arguments: str) -> dict:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def chunk(role: str, message_id: str, content: str | None = "", **fields) -> ChatAgentChunk:
    custom_outputs = fields.pop("custom_outputs", None)
    return ChatAgentChunk(delta=ChatAgentMessage(role=role, content=content, id=message_id, **fields),
                          custom_outputs=custom_outputs)


def valid_events(events) -> list[dict]:
    dumped = [event.model_dump(exclude_none=True) for event in events]
    for event in dumped:
        assert validation_errors(event, "responses_agent_stream_event") == [], event
    return dumped


def test_a_responses_request_becomes_chat_agent_messages_context_and_custom_inputs():
    request = ResponsesAgentRequest(
        input=[
            {"role": "developer", "content": "Be brief."},
            {"role": "user", "content": [{"type": "input_text", "text": "Weather in "},
                                         {"type": "input_text", "text": "Paris and Rome?"}]},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Looking."}]},
            {"type": "function_call", "id": "fc1", "call_id": "c1", "name": "weather",
             "arguments": '{"city": "Paris"}'},
            {"type": "function_call", "id": "fc2", "call_id": "c2", "name": "weather", "arguments": '{"city": "Rome"}'},
            {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
            {"type": "function_call_output", "call_id": "c2", "output": [{"type": "text", "text": "rain"}]},
            {"type": "reasoning", "id": "r1", "summary": [{"type": "summary_text", "text": "no ChatAgent form"}]},
            {"type": "function_call_output", "call_id": "elsewhere", "output": "42"},
        ],
        context={"conversation_id": "conv-1", "user_id": "user-1"},
        custom_inputs={"tenant": "acme"},
    )
    messages, context, custom_inputs = chat_agent_inputs(request)
    assert [(message.role, message.content) for message in messages] == [
        ("system", "Be brief."), ("user", "Weather in Paris and Rome?"), ("assistant", "Looking."),
        ("tool", "sunny"), ("tool", json.dumps([{"type": "text", "text": "rain"}])), ("tool", "42")]
    # The assistant's text and the two calls that follow it are one turn, as chat completions expects.
    assert [(call.id, call.function.name, call.function.arguments) for call in messages[2].tool_calls] == [
        ("c1", "weather", '{"city": "Paris"}'), ("c2", "weather", '{"city": "Rome"}')]
    assert [(message.tool_call_id, message.name) for message in messages[3:]] == [
        ("c1", "weather"), ("c2", "weather"), ("elsewhere", "unknown_tool")]
    assert context == ChatContext(conversation_id="conv-1", user_id="user-1")
    assert custom_inputs == {"tenant": "acme"}


def test_a_function_call_after_a_tool_result_starts_a_new_assistant_message():
    request = ResponsesAgentRequest(input=[
        {"role": "user", "content": "hi"},
        {"type": "function_call", "call_id": "c1", "name": "a", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "1"},
        {"type": "function_call", "call_id": "c2", "name": "b", "arguments": "{}"},
    ])
    messages, context, custom_inputs = chat_agent_inputs(request)
    assert [(message.role, [call.id for call in message.tool_calls or []]) for message in messages] == [
        ("user", []), ("assistant", ["c1"]), ("tool", []), ("assistant", ["c2"])]
    assert context is None and custom_inputs is None


def test_a_request_with_an_image_is_refused_with_a_reason():
    request = ResponsesAgentRequest(input=[{"role": "user", "content": [
        {"type": "input_text", "text": "What is this?"}, {"type": "input_image", "image_url": "https://x/y.png"}]}])
    with pytest.raises(ValueError, match="text messages only.*input_image"):
        chat_agent_inputs(request)


def test_a_chat_agent_response_becomes_output_items():
    response = ChatAgentResponse(messages=[
        ChatAgentMessage(role="assistant", content="", id="run-1",
                         tool_calls=[tool_call("call-1", "lookup", '{"q": "x"}'), tool_call("call-2", "lookup", "{}")]),
        ChatAgentMessage(role="tool", content='{"hits": 2}', name="lookup", tool_call_id="call-1", id="t-1"),
        ChatAgentMessage(role="tool", content="none", name="lookup", tool_call_id="call-2", id="t-2"),
        ChatAgentMessage(role="assistant", content="Two hits.", name="llm", id="run-2", attachments={"chart": "png"}),
    ], custom_outputs={"hits": 2}, finish_reason="stop")
    answer = responses_from_chat(response).model_dump(exclude_none=True)
    assert validation_errors(answer, "responses_agent_response") == []
    assert [(item["type"], item.get("id"), item.get("call_id")) for item in answer["output"]] == [
        ("function_call", "call-1", "call-1"), ("function_call", "call-2", "call-2"),
        ("function_call_output", None, "call-1"), ("function_call_output", None, "call-2"),
        ("message", "run-2", None)]
    assert answer["output"][0]["name"] == "lookup" and answer["output"][0]["arguments"] == '{"q": "x"}'
    assert answer["output"][2]["output"] == '{"hits": 2}'
    assert answer["output"][4]["content"][0]["text"] == "Two hits."
    assert answer["custom_outputs"] == {"hits": 2}


def test_text_and_tool_calls_of_one_message_and_a_dict_answer_are_kept():
    answer = responses_from_chat({"messages": [
        {"role": "assistant", "content": "Let me look.", "id": "m-1", "tool_calls": [tool_call("c", "f", "{}")]},
        {"role": "user", "content": "echoed by a multi-agent system", "id": "m-2"},
    ]}).model_dump(exclude_none=True)
    assert validation_errors(answer, "responses_agent_response") == []
    # Output messages are the assistant's: another role's text becomes an assistant message item.
    assert [(item["type"], item.get("id")) for item in answer["output"]] == [
        ("message", "m-1"), ("function_call", "c"), ("message", "m-2")]
    assert answer["output"][2]["role"] == "assistant"
    assert "custom_outputs" not in answer


def test_a_multi_chunk_stream_gives_text_deltas_and_one_done_item_per_message():
    chunks = [
        chunk("assistant", "run-1", tool_calls=[tool_call("call-1", "lookup", '{"q": ')]),
        chunk("assistant", "run-1", content=None, tool_calls=[tool_call("call-1", "lookup", '"x"}')]),
        chunk("tool", "t-1", content='{"hits": 2}', name="lookup", tool_call_id="call-1"),
        chunk("assistant", "run-2", content="Two "),
        chunk("assistant", "run-2", content="hits "),
        chunk("assistant", "run-2", content="found."),
        chunk("assistant", "run-2", content="", custom_outputs={"hits": 2}),
    ]
    events = valid_events(events_from_chunks(chunks))
    assert [(event["type"], event.get("item_id") or event["item"]["type"]) for event in events] == [
        ("response.output_item.done", "function_call"),
        ("response.output_item.done", "function_call_output"),
        ("response.output_text.delta", "run-2"), ("response.output_text.delta", "run-2"),
        ("response.output_text.delta", "run-2"),
        ("response.output_item.done", "message")]
    call, result, *_, text = [event for event in events]
    assert (call["item"]["call_id"], call["item"]["arguments"]) == ("call-1", '{"q": "x"}')  # pieces joined
    assert (result["item"]["call_id"], result["item"]["output"]) == ("call-1", '{"hits": 2}')
    assert text["item"]["id"] == "run-2" and text["item"]["content"][0]["text"] == "Two hits found."
    assert text["custom_outputs"] == {"hits": 2} and "custom_outputs" not in call


def test_chunks_as_dicts_and_an_empty_stream():
    events = valid_events(events_from_chunks([{"delta": {"role": "assistant", "content": "hi", "id": "a"}}]))
    assert [event["type"] for event in events] == ["response.output_text.delta", "response.output_item.done"]
    assert list(events_from_chunks([])) == []


def test_a_whole_answer_streams_as_done_items_with_custom_outputs_last():
    response = ChatAgentResponse(messages=[
        ChatAgentMessage(role="assistant", content=None, id="a", tool_calls=[tool_call("c", "f", "{}")]),
        ChatAgentMessage(role="tool", content="ok", name="f", tool_call_id="c", id="t"),
        ChatAgentMessage(role="assistant", content="done", id="b")], custom_outputs={"k": 1})
    events = valid_events(events_from_response(response))
    assert [event["item"]["type"] for event in events] == ["function_call", "function_call_output", "message"]
    assert [event.get("custom_outputs") for event in events] == [None, None, {"k": 1}]


class EchoAgent(ChatAgent):
    """A ChatAgent without predict_stream: ChatAgent's own raises NotImplementedError."""

    def predict(self, messages, context=None, custom_inputs=None):
        text = f"{messages[-1].content} from {context.user_id if context else '?'} with {custom_inputs}"
        return ChatAgentResponse(messages=[ChatAgentMessage(role="assistant", content=text, id="echo")])


class PiecesAgent(EchoAgent):
    def predict_stream(self, messages, context=None, custom_inputs=None):
        for piece in ("one ", "two"):
            yield ChatAgentChunk(delta=ChatAgentMessage(role="assistant", content=piece, id="pieces"))


def test_the_handlers_functions_call_a_real_chat_agent():
    request = ResponsesAgentRequest(input=[{"role": "user", "content": "hello"}], context={"user_id": "u-1"},
                                    custom_inputs={"n": 1})
    answer = predict_with_chat_agent(EchoAgent().predict, request).model_dump(exclude_none=True)
    assert answer["output"][0]["content"][0]["text"] == "hello from u-1 with {'n': 1}"
    with pytest.raises(NotImplementedError):
        list(stream_with_chat_agent(EchoAgent().predict_stream, request))
    fallback = valid_events(stream_from_chat_predict(EchoAgent().predict, request))
    assert [(event["type"], event["item"]["id"]) for event in fallback] == [("response.output_item.done", "echo")]
    streamed = valid_events(stream_with_chat_agent(PiecesAgent().predict_stream, request))
    assert [event.get("delta") for event in streamed] == ["one ", "two", None]
    assert streamed[-1]["item"]["content"][0]["text"] == "one two"
