"""agent_server/user_auth.py's `as_user`: a per-request copy of the app's OpenAI client that calls as the user
whose token Apps forwarded, proven by the stand-in's record of which token made each LLM call."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from mlflow.genai.agent_server import set_request_headers
from openai import AsyncOpenAI, OpenAI

from agent_server.user_auth import NoUserToken, as_user


def llm_principals(workspace, since: int) -> list[str]:
    calls = httpx.get(f"{workspace.url}/_standin/calls", params={"since": since},
                      headers={"Authorization": f"Bearer {workspace.token}"}, timeout=10).json()
    return [call["principal"] for call in calls["calls"] if call["kind"] == "llm"]


def cursor(workspace) -> int:
    return httpx.get(f"{workspace.url}/_standin/calls", params={"since": 1 << 62},
                     headers={"Authorization": f"Bearer {workspace.token}"}, timeout=10).json()["next"]


def app_client(workspace, kind=AsyncOpenAI):
    # As the async conversion builds it: the app's own token both as the key and as a default header.
    app_token = f"{workspace.token}.app-sp"
    return kind(base_url=f"{workspace.url}/serving-endpoints", api_key=app_token,
                default_headers={"Authorization": f"Bearer {app_token}"})


def ask(client):
    return client.chat.completions.create(model="databricks-claude-sonnet-4",
                                          messages=[{"role": "user", "content": "hi"}])


def test_each_request_calls_as_its_own_user_over_the_app_clients_connections(standin_workspace):
    client = app_client(standin_workspace)

    async def request(user: str):
        set_request_headers({"x-forwarded-access-token": f"{standin_workspace.token}.{user}"})
        await asyncio.sleep(0)  # let the other requests set their headers in between
        await ask(as_user(client))

    async def many():
        # Each task runs in its own copy of the context, as AgentServer's requests do.
        await asyncio.gather(*(request(f"user-{index}") for index in range(8)))
        await ask(client)  # the app's own call, outside any request
        await client.close()

    start = cursor(standin_workspace)
    asyncio.run(many())
    principals = llm_principals(standin_workspace, start)
    assert sorted(principals[:-1]) == sorted(f"user-{index}" for index in range(8))
    assert principals[-1] == "app-sp"


def test_a_client_authenticating_in_its_http_client_is_refused(standin_workspace):
    # databricks-sdk's get_open_ai_client() authenticates through an httpx auth: a copy would still be the app.
    client = OpenAI(base_url=f"{standin_workspace.url}/serving-endpoints", api_key="-",
                    http_client=httpx.Client(auth=lambda request: request))
    set_request_headers({"x-forwarded-access-token": f"{standin_workspace.token}.user-0"})
    with pytest.raises(ValueError, match="inside its HTTP client"):
        as_user(client)


def test_in_an_app_a_request_without_the_users_token_is_refused(standin_workspace, monkeypatch):
    monkeypatch.setenv("DATABRICKS_APP_NAME", "my-app")
    set_request_headers({})
    with pytest.raises(NoUserToken, match="user_api_scopes"):
        as_user(app_client(standin_workspace, OpenAI))
