"""The request `migrate smoke` sends, and how strictly its answers are compared with the original's.

The request is the original model's input example (a ChatAgent's `messages` become Responses `input`; the
original still gets them as is), else a minimal one. Against a workspace on this machine (the deterministic
stand-in) answers are compared exactly, ids aside; against a real one, whose LLM text varies, by structure.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlparse

from scripts.core.errors import MigrateError
from scripts.core.layout import MigrationLayout
from scripts.workspace import profile_host

INPUT_EXAMPLE = "input_example.json"
MINIMAL_REQUEST = {"input": [{"role": "user", "content": "Hello! This is a smoke test."}]}
# Sent when the input example has no `context`, so the app is seen to accept it as Model Serving did.
SMOKE_CONTEXT = {"conversation_id": "migrate-smoke", "user_id": "migrate-smoke"}
PARITY_CHOICES = ("auto", "exact", "structure", "off")
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


def smoke_request(layout: MigrationLayout, input_path: Path | None) -> tuple[dict, str, dict]:
    """The request to send, where it came from (a path, or "minimal" when no input example exists), and the
    request for the original model: the same, but for a ChatAgent's example, which the original takes as is."""
    original_request = None
    candidates = [input_path] if input_path else [layout.original / INPUT_EXAMPLE, layout.source / INPUT_EXAMPLE]
    for path in candidates:
        if path is not None and path.is_file():
            try:
                request = json.loads(path.read_text(encoding="utf-8"))
            except json.JSONDecodeError as error:
                raise MigrateError(f"{path} is not JSON: {error}", "pass --input with a JSON request",
                                   code="SMK002") from None
            if isinstance(request, dict) and "input" not in request and "messages" in request:
                original_request = {key: value for key, value in request.items() if key != "stream"}
                request = responses_request_from_chat(request, path)
                break
            if not isinstance(request, dict) or "input" not in request:
                raise MigrateError(f"{path} is not a ResponsesAgent request (a JSON object with `input`)",
                                   'pass --input with a request like {"input": [{"role": "user", "content": "hi"}]}',
                                   code="SMK002")
            break
    else:
        if input_path is not None:
            raise MigrateError(f"no file {input_path}", "pass --input with an existing JSON file", code="SMK002")
        request, path = dict(MINIMAL_REQUEST), None
    request = {key: value for key, value in request.items() if key != "stream"}
    request.setdefault("context", dict(SMOKE_CONTEXT))
    source = layout.relative(path) if path else "minimal"
    if original_request is None:
        return request, source, request
    original_request.setdefault("context", request["context"])
    return request, f"{source} (ChatAgent messages sent as input)", original_request


def responses_request_from_chat(request: dict, path: Path) -> dict:
    """A ChatAgent input example (`messages`) as the Responses request the app takes: plain text messages
    become input items; custom_inputs and context are kept."""
    items = []
    for message in request["messages"]:
        if not (isinstance(message, dict) and isinstance(message.get("content"), str) and message.get("role")
                in ("user", "assistant", "system")):
            raise MigrateError(f"{path}: a ChatAgent message the smoke test cannot send as input: "
                               f"{json.dumps(message)[:120]}",
                               'pass --input with a Responses request: {"input": [{"role": "user", "content": "hi"}]}',
                               code="SMK002")
        items.append({"role": message["role"], "content": message["content"]})
    return {"input": items, **{key: request[key] for key in ("custom_inputs", "context") if key in request}}


def comparison_mode(parity: str, env: dict[str, str], profile: str | None = None) -> str:
    """`exact` against a workspace on this machine (the deterministic stand-in), `structure` against a real one,
    whose LLM answers vary."""
    if parity in ("exact", "structure"):
        return parity
    host = urlparse(profile_host(profile, env) or "").hostname
    return "exact" if host in LOCAL_HOSTS else "structure"


def refuse_plain_http(url: str) -> None:
    """A deployed smoke test sends the user's token: never over plain http to another machine."""
    from urllib.parse import urlparse

    parsed = urlparse(url)
    if parsed.scheme == "http" and parsed.hostname not in LOCAL_HOSTS:
        raise MigrateError(f"{url} is plain http: the smoke test would send your token unencrypted",
                           "use the app's https:// URL (`databricks apps get APP_NAME` shows it)", code="SMK024")
