"""The agent's tools: OpenAI function specs and their Python implementations."""

import datetime

TOOL_SPECS = [
    {
        "type": "function",
        "function": {
            "name": "word_count",
            "description": "Count the words of a text.",
            "parameters": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
        },
    },
    {
        "type": "function",
        "function": {
            "name": "days_until",
            "description": "Days from 2026-01-01 until an ISO date.",
            "parameters": {"type": "object", "properties": {"date": {"type": "string"}}, "required": ["date"]},
        },
    },
]


def word_count(text: str) -> str:
    return str(len(text.split()))


def days_until(date: str) -> str:
    try:
        target = datetime.date.fromisoformat(date)
    except ValueError:
        return f"not an ISO date: {date}"
    return str((target - datetime.date(2026, 1, 1)).days)


def run_tool(name: str, arguments: dict) -> str:
    tools = {"word_count": word_count, "days_until": days_until}
    if name not in tools:
        return f"unknown tool: {name}"
    return tools[name](**arguments)
