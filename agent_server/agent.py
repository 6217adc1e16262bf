"""The migrated agent goes here: `migrate code` replaces this file with the agent's @invoke/@stream handlers.

Until then the scaffold answers every request with an error that says what to run, so a server started
too early fails loudly instead of answering something plausible.
"""

from mlflow.genai.agent_server import invoke, stream
from mlflow.types.responses import ResponsesAgentRequest, ResponsesAgentResponse

NOT_MIGRATED = "this app has no agent yet: run `uv run migrate code` to migrate the agent into agent_server/"


@invoke()
async def handle_invoke(request: ResponsesAgentRequest) -> ResponsesAgentResponse:
    raise NotImplementedError(NOT_MIGRATED)


@stream()
async def handle_stream(request: ResponsesAgentRequest):
    raise NotImplementedError(NOT_MIGRATED)
    yield  # makes this an async generator, as AgentServer expects of a stream handler
