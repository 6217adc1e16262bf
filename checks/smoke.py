"""The smoke check: every verdict of `migrate smoke` recomputed from the responses its report recorded.

`migrate smoke` records what the server (and the original model) answered, raw; the findings are derived
from that record by `smoke_findings`, both when the step runs and when `migrate check` re-checks it, so a
report cannot claim a pass its own record contradicts. The check also notices when the agent's code changed
after the smoke test ran (any file it ships, not only the Python ones).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from scripts.core.findings import Finding
from checks.identity import concurrency_findings, identity_findings
from scripts import responses_stream as rs
from scripts.core.layout import MigrationLayout

STEP = "smoke"
AGENT_PACKAGE = "agent_server"
REDIRECTS = (301, 302, 303, 307, 308)
LOGIN_FIX = ("Databricks Apps answer a personal access token with a redirect to the login page: sign in with "
             "OAuth, `databricks auth login --host WORKSPACE_URL --profile PROFILE`, then run `migrate smoke --url "
             "APP_URL --profile PROFILE` again")


# What the app ships besides agent_server/: a change to its dependencies changes what ran, too.
SHIPPED_FILES = ("pyproject.toml", "uv.lock")


def agent_file_hashes(app_dir: Path) -> dict[str, str]:
    """sha256 of every file the app ships that decides how it answers (relative paths): agent_server/ whole
    (code, model_config.yml, artifacts) and the dependency files. What the smoke test ran."""
    package = app_dir / AGENT_PACKAGE
    if not package.is_dir():
        return {}
    files = [path for path in sorted(package.rglob("*"))
             if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"]
    files += [app_dir / name for name in SHIPPED_FILES if (app_dir / name).is_file()]
    return {path.relative_to(app_dir).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest() for path in files}


def _server_findings(where: str, server: dict | None) -> list[Finding]:
    if not server or server.get("health") in (None, "ok"):
        return []
    tail = "\n".join(server.get("log_tail") or [])
    if server["health"] == "port_taken":
        return [Finding("SMK004", "error", where, server.get("message") or "the server's port is taken",
                        "stop what listens there, or leave out --port so a free port is chosen")]
    failed = server.get("failed_at")
    at = f" at {failed['file']}:{failed['line']} ({failed['error']})" if failed else ""
    message = f"{server.get('message') or 'the server did not become healthy'}{at}"
    if tail:
        message += f"; the server's last log lines:\n{tail}"
    fix = (f"fix {failed['file']} line {failed['line']}, then run `migrate smoke` again" if failed else
           "read the server log above; start it by hand with `uv run start-server` in the app to see more, fix, "
           "and run `migrate smoke` again (a missing variable in .env is a common cause)")
    return [Finding("SMK003", "error", where, message, fix)]


def _http_findings(where: str, part: str, answer: dict, deployed: bool) -> list[Finding]:
    """Findings about how an HTTP request itself went (timeout, redirect, refused, non-200)."""
    if answer.get("error"):
        return [Finding("SMK012", "error", f"{where} {part}", f"the {part} request failed: {answer['error']}",
                        "make sure the server is up and answers within the timeout (Apps' proxy cuts requests at "
                        "about 120 s); raise --request-timeout for a slow agent")]
    status = answer.get("status_code")
    if status in REDIRECTS:
        location = answer.get("location") or "?"
        return [Finding("SMK020", "error", f"{where} {part}",
                        f"the app answered {status} with a redirect to {location} instead of the agent's answer",
                        LOGIN_FIX if deployed else "point --url at the app itself, not at a page that redirects")]
    if deployed and status in (401, 403):
        return [Finding("SMK021", "error", f"{where} {part}", f"the app refused the request with HTTP {status}",
                        "use an identity that has CAN_USE on the app: `databricks auth login --profile PROFILE` "
                        "with that user, or grant the permission in the app's settings")]
    if status != 200:
        body = answer.get("body") if part == "invoke" else answer.get("text")
        code = "SMK005" if part == "invoke" else "SMK007"
        return [Finding(code, "error", f"{where} {part}",
                        f"the {part} request got HTTP {status}: {rs.shown(body)}",
                        "an HTTP 500 means the agent raised: its message is above and in the server log; fix "
                        "agent_server/ and run `migrate smoke` again")]
    return []


def _invoke_findings(where: str, invoke: dict, deployed: bool) -> list[Finding]:
    findings = _http_findings(where, "invoke", invoke, deployed)
    if findings:
        return findings
    problems = rs.response_problems(invoke.get("body"))
    if problems:
        findings.append(Finding("SMK006", "error", f"{where} invoke",
                                "the answer is not a ResponsesAgentResponse: " + "; ".join(problems[:5]),
                                "return a ResponsesAgentResponse (or a dict of that shape) from the @invoke handler"))
    return findings


def _stream_findings(where: str, stream: dict, deployed: bool) -> list[Finding]:
    findings = _http_findings(where, "stream", stream, deployed)
    if findings:
        return findings
    parsed = rs.parse_sse(stream.get("text") or "")
    problems = parsed.malformed + rs.event_problems(parsed.events)
    if problems:
        findings.append(Finding("SMK008", "error", f"{where} stream",
                                f"{len(problems)} stream line(s) break SSE or ResponsesAgentStreamEvent: "
                                + "; ".join(problems[:5]),
                                "yield ResponsesAgentStreamEvent objects (or dicts of that shape) from the @stream "
                                "handler"))
    errors = rs.stream_errors(parsed.events)
    if errors:
        findings.append(Finding("SMK009", "error", f"{where} stream",
                                f"the stream carries an error event after HTTP 200: {errors[0]}",
                                "the agent raised while streaming: read the server log, fix agent_server/, and run "
                                "`migrate smoke` again"))
    if not parsed.done:
        findings.append(Finding("SMK010", "error", f"{where} stream", "the stream did not end with `data: [DONE]`",
                                "the server closed the stream early: read its log for the cause"))
    return findings


def stream_matches_invoke(payload: dict) -> dict | None:
    """The first difference between the stream's done items and the invoke output, in the run's comparison mode."""
    mode = payload["comparison"]
    body = payload["invoke"].get("body") or {}
    events = rs.parse_sse(payload["stream"].get("text") or "").events
    return rs.first_difference(rs.answer_view(body.get("output") or [], None, mode),
                               rs.answer_view(rs.done_items(events), None, mode))


def original_shape(invoke) -> str:
    """How the original answered a `messages` request: a ChatAgent's messages, or a LangChain model's output
    (MLflow's langchain pyfunc wraps it in a list; its messages carry a LangChain `type`)."""
    if isinstance(invoke, list):
        return "langchain"
    if isinstance(invoke, dict) and "choices" in invoke:
        return "chat_model"
    messages = invoke.get("messages") if isinstance(invoke, dict) else None
    if isinstance(messages, list) and any(isinstance(message, dict) and "type" in message for message in messages):
        return "langchain"
    return "chat_agent"


def original_as_responses(original: dict) -> dict:
    """The original's answer in the Responses format the app speaks: a ChatAgent's answer goes through the
    adapter the migrated app serves it with (agent_server/chat_agent_adapter.py), so the two compare."""
    # shapes: judged by the answer's shape, not the recorded format: MLflow's ChatModel wrapper pops `messages`
    # from the request it is given, so the runner records such a request as "responses".
    if original_shape(original.get("invoke")) == "langchain":  # MLflow's langchain pyfunc answer
        from agent_server import langchain_adapter

        return langchain_adapter.original_as_responses(original)
    if original_shape(original.get("invoke")) == "chat_model":  # a ChatModel's chat completion
        from agent_server import chat_model_adapter

        return chat_model_adapter.original_as_responses(original)
    if original.get("format") != "chat_agent":
        return original
    from agent_server import chat_agent_adapter as adapter

    def plain(events) -> list[dict]:
        return [event.model_dump(exclude_none=True) for event in events]

    stream = original["stream"]
    return {"invoke": adapter.responses_from_chat(original["invoke"]).model_dump(exclude_none=True),
            "stream": plain(adapter.events_from_response(original["invoke"]) if stream is None
                            else adapter.events_from_chunks(stream))}


def parity_differences(payload: dict) -> tuple[dict | None, dict | None]:
    """The first difference to the original model's answer, non-streaming and streaming."""
    mode = payload["comparison"]
    original = original_as_responses(payload["parity"]["original"])
    body = payload["invoke"].get("body") or {}
    invoke_difference = rs.first_difference(
        rs.answer_view(original["invoke"].get("output") or [], original["invoke"].get("custom_outputs"), mode),
        rs.answer_view(body.get("output") or [], body.get("custom_outputs"), mode))
    events = rs.parse_sse(payload["stream"].get("text") or "").events
    stream_difference = rs.first_difference(rs.events_view(original["stream"], mode), rs.events_view(events, mode))
    return invoke_difference, stream_difference


def _difference_text(difference: dict) -> str:
    return (f"first difference at {difference['path']}: the original has {difference['expected']}, "
            f"the app has {difference['actual']}")


def smoke_findings(payload: dict, where: str) -> list[Finding]:
    """Every finding the recorded run supports; `where` names the app (or URL) in finding paths."""
    deployed = payload["target"] == "deployed"
    findings: list[Finding] = []
    request = payload["request"]
    if request["source"] == "minimal":
        findings.append(Finding("SMK001", "warning", where,
                                "no input example was found: the smoke test sent a minimal request",
                                "pass --input FILE with a request your agent expects (the original model's "
                                "input_example.json is the default)"))
    findings += _server_findings(where, payload.get("server"))
    invoke, stream = payload.get("invoke"), payload.get("stream")
    if invoke is None or stream is None:
        return findings
    invoke_findings = _invoke_findings(where, invoke, deployed)
    stream_findings = _stream_findings(where, stream, deployed)
    findings += invoke_findings + stream_findings
    answered = not invoke_findings and not stream_findings
    if answered:
        difference = stream_matches_invoke(payload)
        if difference:
            findings.append(Finding("SMK011", "error", f"{where} stream",
                                    "the stream's output items differ from the non-streaming output (ids aside): "
                                    f"first difference at {difference['path']}: invoke has {difference['expected']}, "
                                    f"the stream has {difference['actual']}",
                                    "make the @stream handler yield one response.output_item.done per output item "
                                    "of the @invoke answer"))
    findings += _parity_findings(payload, where, answered)
    # user-identity: acting as each user, users at once, --concurrency (checks/identity.py)
    findings += identity_findings(payload, where) + concurrency_findings(payload, where)
    return findings


def _parity_findings(payload: dict, where: str, answered: bool) -> list[Finding]:
    parity = payload["parity"]
    if parity["status"] == "skipped":
        return [Finding("SMK016", "warning", where, f"parity with the original model was not checked: "
                        f"{parity.get('reason') or 'skipped'}",
                        "run `migrate smoke` in the working directory that holds original_mlflow_model/ "
                        "(without --parity off) to compare the app with the original")]
    if parity["status"] == "failed":
        return [Finding("SMK015", "error", f"{where} original_mlflow_model",
                        f"the original model could not be run for the parity comparison: {parity.get('error')}",
                        "the original must load with mlflow.pyfunc.load_model in this environment: install its "
                        "requirements (original_mlflow_model/requirements.txt) or pass --python with an "
                        "interpreter that has them; --parity off skips the comparison")]
    findings = []
    if payload["comparison"] == "structure":
        findings.append(Finding("SMK017", "info", where,
                                "compared with the original by structure only (item types and roles, tool names "
                                "and argument keys, custom_outputs keys): a real LLM's text varies",
                                "nothing to do; `--parity exact` compares everything but ids, for a deterministic "
                                "workspace"))
    if not answered:
        return findings
    invoke_difference, stream_difference = parity_differences(payload)
    if invoke_difference:
        findings.append(Finding("SMK013", "error", f"{where} invoke",
                                f"the app's answer differs from the original model's ({payload['comparison']} "
                                f"comparison): {_difference_text(invoke_difference)}",
                                "compare agent_server/agent.py with the original's predict; custom_outputs and "
                                "context must pass through as they did"))
    if stream_difference:
        findings.append(Finding("SMK014", "error", f"{where} stream",
                                f"the app's stream differs from the original model's predict_stream "
                                f"({payload['comparison']} comparison): {_difference_text(stream_difference)}",
                                "compare the @stream handler with the original's predict_stream"))
    return findings


def check_smoke(layout: MigrationLayout) -> list[Finding]:
    report = json.loads(layout.report_path(STEP).read_text(encoding="utf-8"))
    payload = report["payload"]
    where = layout.root.name if payload["target"] == "local" else payload.get("url") or "app"
    findings = smoke_findings(payload, where)
    recorded = payload.get("agent_files") or {}
    if payload["target"] == "local" and recorded:
        current = agent_file_hashes(layout.root)
        changed = sorted(path for path in set(recorded) | set(current) if recorded.get(path) != current.get(path))
        if changed:
            findings.append(Finding("SMK023", "error", f"{layout.root.name}/{AGENT_PACKAGE}",
                                    "the app changed after the smoke test ran, so the test no longer describes "
                                    "what ships: " + ", ".join(changed),
                                    "run `migrate smoke` again (and the steps after it)"))
    return findings
