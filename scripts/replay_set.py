"""The replay set: the logged requests `migrate replay` sends, parsed, translated, de-duplicated and stored.

A logged request is the body the endpoint received. Requests in the older formats are translated as the
smoke test translates an input example (scripts/smoke_request.py): `dataframe_records` / `dataframe_split`
with one row become that row (what MLflow's pyfunc wrapper hands the agent), and ChatAgent / ChatModel
`messages` become Responses `input` for the app while the original model gets them as is.

Privacy: logged requests (and responses) can hold personal data. The set is written to
`<workdir>/.replay/<app>/replay-set.jsonl`, outside the app folder, so neither git nor `databricks bundle deploy`
of the app ever sees it; responses are kept only with --keep-responses. Nothing here prints a body.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from scripts.core import atomic
from scripts.core.errors import MigrateError
from scripts.core.findings import Finding
from scripts.core.layout import MigrationLayout
from scripts.smoke_request import responses_request_from_chat

REPLAY_DIR = ".replay"
SET_FILE = "replay-set.jsonl"
IGNORE_ALL = "# logged requests can hold personal data: never committed (migrate replay)\n*\n"
RESPONSES = "responses"
# Keys a logged response carries that the agent did not produce (the trace, the request id).
SERVING_KEYS = ("databricks_output",)


@dataclass
class LoggedRequest:
    id: str
    request_time: str | None
    format: str  # responses, dataframe_records, dataframe_split, messages
    served_entity_id: str | None
    logged_ms: float | None
    app_request: dict
    original_request: dict
    response: dict | None = None  # the logged response, only with --keep-responses


@dataclass
class ReplaySet:
    requests: list[LoggedRequest] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    rows: int = 0
    duplicates: int = 0
    skipped: int = 0


def set_path(layout: MigrationLayout) -> Path:
    return layout.workdir / REPLAY_DIR / layout.root.name / SET_FILE


def unwrapped(body: dict) -> tuple[str, dict]:
    """(format, the request the agent sees) for a logged body; raises ValueError when it cannot be replayed."""
    if "dataframe_records" in body:
        records = body["dataframe_records"]
        if not (isinstance(records, list) and len(records) == 1 and isinstance(records[0], dict)):
            raise ValueError("dataframe_records with other than one record")
        return "dataframe_records", records[0]
    if "dataframe_split" in body:
        split = body["dataframe_split"]
        if not (isinstance(split, dict) and isinstance(split.get("data"), list) and len(split["data"]) == 1):
            raise ValueError("dataframe_split with other than one row")
        return "dataframe_split", dict(zip(split.get("columns") or [], split["data"][0]))
    if "input" in body:
        return RESPONSES, body
    if "messages" in body:
        return "messages", body
    raise ValueError(f"no `input`, `messages` or dataframe key (keys: {', '.join(sorted(body)[:6])})")


def translated(row_id: str, body: dict) -> tuple[str, dict, dict]:
    """(format, the app's Responses request, the original model's request)."""
    kind, inner = unwrapped(body)
    inner = {key: value for key, value in inner.items() if key != "stream"}  # both modes are replayed
    if "input" in inner:
        return kind, inner, inner
    try:
        return kind, responses_request_from_chat(inner, Path(f"logged request {row_id}")), inner
    except MigrateError as refused:
        raise ValueError(refused.message.split(": a ChatAgent message")[0] + ": a message that is not plain text")


def logged_response(text: str | None) -> dict | None:
    try:
        response = json.loads(text) if text else None
    except json.JSONDecodeError:
        return None
    if not isinstance(response, dict):
        return None
    return {key: value for key, value in response.items() if key not in SERVING_KEYS}


def number(value) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def build_set(rows: list[dict], limit: int, keep_responses: bool, where: str) -> ReplaySet:
    """The replay set from the payload table's rows (newest first): at most `limit` distinct requests."""
    replay = ReplaySet(rows=len(rows))
    seen: set[str] = set()
    for row in rows:
        row_id = row.get("databricks_request_id") or f"row-{replay.rows}"
        try:
            body = json.loads(row.get("request") or "")
            if not isinstance(body, dict):
                raise ValueError(f"a JSON {type(body).__name__}, not an object")
        except (json.JSONDecodeError, ValueError) as error:
            replay.skipped += 1
            replay.findings.append(Finding("RPL006", "warning", f"{where} {row_id}",
                                           f"the logged request is not a JSON object ({type(error).__name__}): "
                                           "skipped", "nothing to do for this request; if many are skipped, check "
                                           "what writes to the endpoint's inference table"))
            continue
        try:
            kind, app_request, original_request = translated(row_id, body)
        except ValueError as error:
            replay.skipped += 1
            replay.findings.append(Finding("RPL008", "warning", f"{where} {row_id}",
                                           f"the logged request cannot be replayed: {error}",
                                           "replay sends one Responses request per logged request; test this kind "
                                           "by hand with `migrate smoke --input FILE`"))
            continue
        key = json.dumps(app_request, sort_keys=True)
        if key in seen:
            replay.duplicates += 1
            continue
        seen.add(key)
        if len(replay.requests) < limit:
            replay.requests.append(LoggedRequest(
                row_id, row.get("request_time"), kind, row.get("served_entity_id"),
                number(row.get("execution_duration_ms")), app_request, original_request,
                logged_response(row.get("response")) if keep_responses else None))
    return replay


def write_set(layout: MigrationLayout, replay: ReplaySet) -> tuple[Path, str]:
    """Store the set (owner-only: it can hold personal data) outside the app; its path and sha256.

    `.replay/.gitignore` ignores everything under it, so even a repository rooted at the working directory
    (rather than at the app) never commits a set."""
    path = set_path(layout)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Atomic: replays of two apps of the working directory may write it at the same time.
    atomic.write_text(layout.workdir / REPLAY_DIR / ".gitignore", IGNORE_ALL)
    text = "".join(json.dumps(asdict(request), sort_keys=True) + "\n" for request in replay.requests)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
        stream.write(text)
    return path, hashlib.sha256(text.encode()).hexdigest()
