"""What the class transform hands the code step: the rewritten entry module and what the handlers call."""

from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst

# ResponsesAgent's static helpers (`self.create_text_output_item(...)`) and the functions of
# mlflow.types.responses that they call.
RESPONSES_HELPERS = {
    "create_text_delta": "create_text_delta",
    "create_annotation_added": "create_annotation_added",
    "create_text_output_item": "create_text_output_item",
    "create_reasoning_item": "create_reasoning_item",
    "create_function_call_item": "create_function_call_item",
    "create_function_call_output_item": "create_function_call_output_item",
    "output_to_responses_items_stream": "output_to_responses_items_stream",
    "responses_agent_output_reducer": "responses_agent_output_reducer",
    "prep_msgs_for_cc_llm": "to_chat_completions_input",
    "_responses_to_cc": "responses_to_cc",
}


@dataclass
class AgentModule:
    """The entry module after the class transform, before the handlers are appended."""

    module: cst.Module
    mode: str  # "extract" | "wrapper"
    class_name: str
    interface: str | None
    reasons: list[str]  # why wrapper mode, empty in extract mode
    predict: str | None  # expression the handlers call
    predict_stream: str | None
    predict_calls_stream: bool
    needs_imports: list[tuple[str, str | None]]
    taken_names: set[str]
    params_kept: list[str] = field(default_factory=list)
    state: dict[str, str] = field(default_factory=dict)  # self.x → module name
    functions: dict[str, str] = field(default_factory=dict)  # method → module function
    async_methods: dict[str, str] = field(default_factory=dict)  # predict → apredict when async-native
