"""One replayed request judged: did the app answer, and does its answer agree with the original model's (and,
when kept, with the response the endpoint logged)?

The comparison is the smoke test's (scripts/responses_stream.py, checks/smoke.py): exact but for generated ids
against a deterministic workspace, by structure against a real one. Only the first difference is kept, cut to
a few hundred characters: the report never holds a request or answer body.
"""

from __future__ import annotations

import statistics
from typing import Any

from checks.smoke import original_as_responses
from scripts import responses_stream as rs

AGREED, DIFFERED, FAILED = "agreed", "differed", "failed"
# The app answered, but nothing was there to compare with (--parity off and no logged response kept, or the
# original raised on this request here): not counted as agreement.
UNCOMPARED = "uncompared"


def app_failure(invoke: dict, stream: dict) -> str | None:
    """Why the app's answers are not answers (HTTP error, invalid body, error event, unfinished stream), or None."""
    for part, answer in (("invoke", invoke), ("stream", stream)):
        if answer.get("error"):
            return f"{part}: {answer['error']}"
        if answer.get("status_code") != 200:
            return f"{part}: HTTP {answer.get('status_code')}: {rs.shown(answer.get('body') or answer.get('text'))}"
    problems = rs.response_problems(invoke.get("body"))
    if problems:
        return f"invoke: not a ResponsesAgentResponse: {problems[0]}"
    parsed = rs.parse_sse(stream.get("text") or "")
    errors = rs.stream_errors(parsed.events)
    if errors:
        return f"stream: error event: {rs.shown(errors[0])}"
    problems = parsed.malformed + rs.event_problems(parsed.events)
    if problems:
        return f"stream: {problems[0]}"
    if not parsed.done:
        return "stream: did not end with `data: [DONE]`"
    return None


def original_difference(original: dict, invoke: dict, stream: dict, mode: str) -> tuple[str, dict] | None:
    """(part, first difference) between the original's answer and the app's, or None when they agree."""
    expected = original_as_responses(original)
    body = invoke.get("body") or {}
    difference = rs.first_difference(
        rs.answer_view(expected["invoke"].get("output") or [], expected["invoke"].get("custom_outputs"), mode),
        rs.answer_view(body.get("output") or [], body.get("custom_outputs"), mode))
    if difference:
        return "invoke", difference
    events = rs.parse_sse(stream.get("text") or "").events
    difference = rs.first_difference(rs.events_view(expected["stream"], mode), rs.events_view(events, mode))
    return ("stream", difference) if difference else None


def logged_difference(logged: dict | None, invoke: dict) -> dict | None:
    """The first structural difference between the response the endpoint logged and the app's answer. A logged
    response that is not a Responses answer (an aggregated stream, a ChatAgent answer) is not compared."""
    if not logged or not isinstance(logged.get("output"), list):
        return None
    body = invoke.get("body") or {}
    return rs.first_difference(rs.answer_view(logged["output"], logged.get("custom_outputs"), "structure"),
                               rs.answer_view(body.get("output") or [], body.get("custom_outputs"), "structure"))


def judged(request, invoke: dict, stream: dict, original: dict | None, mode: str, app_seconds: float) -> dict:
    """The report's record of one replayed request (no bodies)."""
    record: dict[str, Any] = {"id": request.id, "format": request.format, "status": AGREED, "part": None,
                              "difference": None, "error": None, "app_seconds": round(app_seconds, 4),
                              "original_seconds": None, "original_error": None, "logged_ms": request.logged_ms,
                              "compared_with": []}
    failure = app_failure(invoke, stream)
    if failure:
        record.update(status=FAILED, error=failure)
        return record
    if original is not None and "error" not in original:
        record["original_seconds"] = round(original.get("seconds", 0.0), 4)
        record["compared_with"].append("original")
        found = original_difference(original, invoke, stream, mode)
        if found:
            record.update(status=DIFFERED, part=found[0], difference=found[1])
            return record
    elif original is not None:
        record["original_error"] = rs.shown(original["error"])
    difference = logged_difference(request.response, invoke)
    if request.response is not None and isinstance(request.response.get("output"), list):
        record["compared_with"].append("logged")
    if difference:
        record.update(status=DIFFERED, part="logged", difference=difference)
    elif not record["compared_with"]:
        record["status"] = UNCOMPARED
    return record


def percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return round(values[0], 4)
    return round(statistics.quantiles(values, n=100, method="inclusive")[int(fraction * 100) - 1], 4)


def totals(records: list[dict]) -> dict:
    """Counts by outcome and by format, and the latency percentiles of app and original."""
    app = [record["app_seconds"] for record in records]
    original = [record["original_seconds"] for record in records if record["original_seconds"] is not None]
    return {
        "replayed": len(records),
        AGREED: sum(record["status"] == AGREED for record in records),
        DIFFERED: sum(record["status"] == DIFFERED for record in records),
        FAILED: sum(record["status"] == FAILED for record in records),
        UNCOMPARED: sum(record["status"] == UNCOMPARED for record in records),
        "older_formats": sum(record["format"] != "responses" for record in records),
        "latency_seconds": {"app_p50": percentile(app, 0.5), "app_p95": percentile(app, 0.95),
                            "original_p50": percentile(original, 0.5), "original_p95": percentile(original, 0.95)},
    }
