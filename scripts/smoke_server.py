"""Talking to the app under test: its local server (started, asked, always stopped) or the deployed app.

Each answer is recorded raw (status, body or the SSE text, a redirect target, or the error), for
`checks.smoke` to judge here and again in `migrate check`.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import httpx

from scripts import app_process, processes
from scripts.core.errors import MigrateError
from scripts.core.layout import MigrationLayout


def ask(client: httpx.Client, url: str, request: dict, stream: bool, timeout: float) -> dict:
    """One request to `url`/invocations, recorded raw: status, body or SSE text, redirect target, or the error."""
    body = {**request, "stream": True} if stream else request
    try:
        response = client.post(f"{url}/invocations", json=body, timeout=timeout)
    except httpx.TimeoutException:
        return {"status_code": None, "error": f"no answer within {timeout:.0f}s"}
    except httpx.HTTPError as error:
        return {"status_code": None, "error": f"{type(error).__name__}: {error}"}
    answer: dict = {"status_code": response.status_code, "error": None}
    if response.is_redirect:
        answer["location"] = response.headers.get("location")
    if stream and response.status_code == 200:
        answer["text"] = response.text
        return answer
    try:
        answer["body"] = response.json()
    except ValueError:
        answer["body"] = response.text[:2000]
    if stream:
        answer["text"] = response.text[:2000]
    return answer


def ask_both(url: str, request: dict, timeout: float, headers: dict[str, str] | None = None) -> tuple[dict, dict]:
    # Redirects are not followed: an app that redirects a token to its login page must be seen doing so.
    with httpx.Client(headers=headers or {}, follow_redirects=False) as client:
        return ask(client, url, request, False, timeout), ask(client, url, request, True, timeout)


def server_command(app_dir: Path, python: Path | None) -> app_process.ServerCommand:
    if python is not None:
        def argv(port: int) -> list[str]:
            return [str(python), "-m", "agent_server.start_server", "--host", app_process.LOCALHOST,
                    "--port", str(port)]
    else:
        uv = processes.uv_command()

        def argv(port: int) -> list[str]:
            return [*uv, "run", "start-server", "--host", app_process.LOCALHOST, "--port", str(port)]
    # start_server loads the app's .env on top of this (without overriding it).
    environment = app_process.local_run_environment(processes.child_environment(for_app=python is None))
    return app_process.ServerCommand(argv, app_dir, environment, description="app server")


def run_local_server(layout: MigrationLayout, request: dict, args: argparse.Namespace, probes=None) -> dict:
    """Start the app, ask it, stop it; what happened, for the payload. `probes` (scripts/smoke_identity.py)
    gives the server its own service principal on the stand-in, the main requests a user's token, and runs
    the concurrent-users and --concurrency probes against the running server."""
    command = server_command(layout.root, args.python)
    if probes is not None:
        command = dataclasses.replace(command, env=probes.server_env(dict(command.env)))
    result: dict = {"server": {"command": None, "health": None, "message": None, "log_tail": [], "failed_at": None},
                    "invoke": None, "stream": None, "url": None}

    def started(pid: int, port: int) -> None:
        print(f"server started (pid {pid}, port {port}); waiting for /health", file=sys.stderr)

    try:
        with app_process.serving(command, port=args.port, start_timeout=args.start_timeout,
                                 app_dir=layout.root, on_start=started) as server:
            result["server"]["command"] = server.command
            result["server"]["health"] = "ok"
            result["url"] = server.url
            headers = probes.main_headers() if probes is not None else None
            result["invoke"], result["stream"] = ask_both(server.url, request, args.request_timeout, headers)
            if probes is not None:
                probes.after_main(server.url, request)
            if result["invoke"].get("status_code") != 200 or result["stream"].get("status_code") != 200:
                result["server"]["log_tail"] = server.log_tail()
    except app_process.ServerNotReady as problem:
        result["server"].update(health=problem.reason, message=problem.message, log_tail=problem.log_tail,
                                failed_at=problem.failed_at.__dict__ if problem.failed_at else None)
    return result



# ---------------------------------------------------------------------------------------------------- deployed app


def app_url(client, app_name: str) -> str:
    from databricks.sdk.errors import NotFound, PermissionDenied

    try:
        app = client.apps.get(app_name)
    except (NotFound, PermissionDenied) as error:
        raise MigrateError(f"cannot read app {app_name!r}: {error}",
                           "check the name with `databricks apps list`, or pass --url APP_URL", code="SMK022") from None
    state = app.app_status.state.value if app.app_status and app.app_status.state else None
    if not app.url:
        raise MigrateError(f"app {app_name!r} has no URL yet (state {state})",
                           "deploy and start it: `databricks bundle deploy` then `databricks bundle run`",
                           code="SMK022")
    return app.url.rstrip("/")


def auth_headers(client) -> dict[str, str]:
    return dict(client.config.authenticate())
