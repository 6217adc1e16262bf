"""The async conversion an assistant does after `migrate code --mode async`, written down for the examples.

`migrate code --mode async` writes `async def` handlers and lists, as COD010 findings, the blocking calls
left for the assistant to convert. The demo and
the benchmark stand in for the assistant with these edits. Each `before` must occur exactly once in the
generated `agent_server/agent.py`, so a change in what `migrate code` writes shows up as an error here
instead of a silently different app.
"""

from __future__ import annotations

from pathlib import Path

# The async LLM client's transport: what makes the async app faster than the sync one. The benchmark's
# `hand_async` mode removes it to measure the hand migration with httpx's default transport.
FAST_TRANSPORT = ", http_client=DefaultAioHttpClient()"
# What the app needs installed for it: the conversion adds it to the app's dependencies (`uv add`).
FAST_TRANSPORT_DEPENDENCY = "openai[aiohttp]"

ASYNC_CONVERSIONS: dict[str, tuple[tuple[str, str], ...]] = {
    "openai_tools": (
        # COD010: the sync OpenAI client from databricks-sdk becomes an AsyncOpenAI client on the same
        # workspace URL and credentials (the SDK's authenticate() gives the headers), on openai's aiohttp
        # transport (`openai[aiohttp]`): httpx's default async pool costs ~15 ms of CPU per call at 64 calls in
        # flight, aiohttp ~1.6 ms (benchmarks/README.md).
        ("client = WorkspaceClient().serving_endpoints.get_open_ai_client()",
         "from openai import AsyncOpenAI, DefaultAioHttpClient\n"
         "_workspace = WorkspaceClient()\n"
         "client = AsyncOpenAI(base_url=f\"{_workspace.config.host.rstrip('/')}/serving-endpoints\", api_key=\"-\",\n"
         f"                     default_headers=_workspace.config.authenticate(){FAST_TRANSPORT})"),
        ("response = client.chat.completions.create(", "response = await client.chat.completions.create("),
        # (COD009: the custom_outputs the original predict returned are carried by `migrate code` itself.)
    ),
}


class ConversionMismatch(RuntimeError):
    pass


def convert(example: str, agent_path: Path) -> int:
    """Apply the example's conversion to a generated agent_server/agent.py; return how many edits it made."""
    edits = ASYNC_CONVERSIONS[example]
    text = agent_path.read_text(encoding="utf-8")
    for before, after in edits:
        if text.count(before) != 1:
            raise ConversionMismatch(
                f"{agent_path}: expected `{before}` once, found it {text.count(before)} times; "
                f"`migrate code --mode async` writes something else now: update examples/async_conversions.py")
        text = text.replace(before, after)
    agent_path.write_text(text, encoding="utf-8")
    return len(edits)
