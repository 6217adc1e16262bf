"""A LangGraph agent written the Model Serving way: ChatDatabricks, a tool node, graph updates streamed.

The graph's stream events are turned into Responses items by helpers in `code/helpers/` (a subpackage,
logged with code_paths), the shape many LangGraph agents in the field have.
"""

from typing import Annotated, Generator, TypedDict

import mlflow
from databricks_langchain import ChatDatabricks
from langchain_core.messages import AnyMessage
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.prebuilt import ToolNode, tools_condition
from mlflow.pyfunc import ResponsesAgent
from mlflow.types.responses import ResponsesAgentRequest, ResponsesAgentResponse, ResponsesAgentStreamEvent

from helpers.events import graph_updates_to_events
from helpers.tools import TOOLS

LLM_ENDPOINT_NAME = "databricks-meta-llama-3-3-70b-instruct"
SYSTEM_PROMPT = "You answer questions about the warehouse. Use lookup_stock for stock levels."


class AgentState(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


def build_graph():
    model = ChatDatabricks(endpoint=LLM_ENDPOINT_NAME).bind_tools(TOOLS)

    def call_model(state: AgentState):
        return {"messages": [model.invoke([{"role": "system", "content": SYSTEM_PROMPT}, *state["messages"]])]}

    graph = StateGraph(AgentState)
    graph.add_node("agent", call_model)
    graph.add_node("tools", ToolNode(TOOLS))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition)
    graph.add_edge("tools", "agent")
    return graph.compile()


class LangGraphResponsesAgent(ResponsesAgent):
    def __init__(self, graph):
        self.graph = graph

    def predict(self, request: ResponsesAgentRequest) -> ResponsesAgentResponse:
        outputs = [event.item for event in self.predict_stream(request)
                   if event.type == "response.output_item.done"]
        return ResponsesAgentResponse(output=outputs, custom_outputs=request.custom_inputs)

    def predict_stream(self, request: ResponsesAgentRequest) -> Generator[ResponsesAgentStreamEvent, None, None]:
        messages = self.prep_msgs_for_cc_llm([item.model_dump() for item in request.input])
        updates = self.graph.stream({"messages": messages}, stream_mode="updates")
        yield from graph_updates_to_events(updates)


mlflow.langchain.autolog()
AGENT = LangGraphResponsesAgent(build_graph())
mlflow.models.set_model(AGENT)
