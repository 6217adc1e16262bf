"""A tool-calling agent written the Model Serving way: a ResponsesAgent class, OpenAI client, a tool loop.

The system prompt is an artifact read in `load_context`; the tools live in `code/tools.py` (code_paths).
`predict` collects what `predict_stream` yields, a pattern many agents in the field use.
"""

import json
import uuid
from pathlib import Path
from typing import Generator

import mlflow
from databricks.sdk import WorkspaceClient
from mlflow.pyfunc import ResponsesAgent
from mlflow.types.responses import ResponsesAgentRequest, ResponsesAgentResponse, ResponsesAgentStreamEvent

from tools import TOOL_SPECS, run_tool

LLM_ENDPOINT_NAME = "databricks-claude-sonnet-4"
MAX_TURNS = 4


class ToolCallingAgent(ResponsesAgent):
    def __init__(self):
        # Model Serving injects DATABRICKS_HOST and a token for the endpoint's resources.
        self.client = WorkspaceClient().serving_endpoints.get_open_ai_client()
        self.system_prompt = "You are a helpful assistant."

    def load_context(self, context):
        self.system_prompt = Path(context.artifacts["system_prompt"]).read_text().strip()

    def predict(self, request: ResponsesAgentRequest) -> ResponsesAgentResponse:
        outputs = [event.item for event in self.predict_stream(request)
                   if event.type == "response.output_item.done"]
        return ResponsesAgentResponse(output=outputs, custom_outputs=request.custom_inputs)

    def predict_stream(self, request: ResponsesAgentRequest) -> Generator[ResponsesAgentStreamEvent, None, None]:
        messages = [{"role": "system", "content": self.system_prompt}]
        messages += self.prep_msgs_for_cc_llm([item.model_dump() for item in request.input])
        for _ in range(MAX_TURNS):
            response = self.client.chat.completions.create(model=LLM_ENDPOINT_NAME, messages=messages,
                                                           tools=TOOL_SPECS)
            message = response.choices[0].message
            if not message.tool_calls:
                yield ResponsesAgentStreamEvent(
                    type="response.output_item.done",
                    item=self.create_text_output_item(text=message.content or "", id=str(uuid.uuid4())),
                )
                return
            messages.append(message.model_dump(exclude_none=True))
            for call in message.tool_calls:
                yield ResponsesAgentStreamEvent(
                    type="response.output_item.done",
                    item=self.create_function_call_item(id=str(uuid.uuid4()), call_id=call.id,
                                                        name=call.function.name,
                                                        arguments=call.function.arguments),
                )
                result = run_tool(call.function.name, json.loads(call.function.arguments))
                messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
                yield ResponsesAgentStreamEvent(
                    type="response.output_item.done",
                    item=self.create_function_call_output_item(call_id=call.id, output=result),
                )


mlflow.openai.autolog()
AGENT = ToolCallingAgent()
mlflow.models.set_model(AGENT)
