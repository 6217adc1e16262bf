"""`migrate replay`: the app answers the requests the endpoint really received, like the original model did.

Read a sample of the endpoint's logged requests from its AI Gateway inference table through a SQL warehouse
(scripts/replay_source.py), make them a de-duplicated replay set in the working directory, outside the app
(scripts/replay_set.py), then serve the app locally and run the original model as the smoke test does
(scripts/smoke_server.py, scripts/smoke_original.py), send every request to both, streaming and not, and
compare (scripts/replay_compare.py). The report keeps per request only its id, format, outcome, the first
difference and timings, never a body; `checks.replay` re-verifies it.
"""

from __future__ import annotations

import argparse
import sys
import time
from contextlib import ExitStack
from pathlib import Path

from checks.replay import STEP
from checks.smoke import agent_file_hashes
from scripts import app_process, processes, replay_compare, replay_set, replay_source
from scripts.core.errors import MigrateError
from scripts.core.findings import Finding
from scripts.core.layout import MigrationLayout, find_app
from scripts.core.reports import StepReport, read_report
from scripts.smoke_original import OriginalRun, original_python
from scripts.smoke_request import PARITY_CHOICES, comparison_mode
from scripts.smoke_server import ask, server_command
from scripts.workspace import workspace_client

DEFAULT_LIMIT = 50
DEFAULT_REQUEST_TIMEOUT = 110.0  # below the ~120 s after which the Apps proxy cuts a request


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--app", type=Path,
                        help="the app folder (default: the one app folder in --workdir)")
    parser.add_argument("--warehouse-id", required=True, help="the SQL warehouse that reads the inference table")
    parser.add_argument("--endpoint", help="the serving endpoint (default: the one `migrate download` read)")
    parser.add_argument("--profile", help="Databricks CLI profile for the endpoint and the warehouse")
    parser.add_argument("--limit", type=int, default=DEFAULT_LIMIT,
                        help="at most this many distinct requests, newest first (default: %(default)s)")
    parser.add_argument("--since", help="only requests logged at or after this time (ISO 8601, e.g. 2026-11-01)")
    parser.add_argument("--served-entity-id",
                        help="only requests served by this entity (the payload table's served_entity_id)")
    parser.add_argument("--keep-responses", action="store_true",
                        help="also keep the logged responses in the replay set and compare their structure (they "
                             "can hold personal data)")
    parser.add_argument("--parity", choices=PARITY_CHOICES, default="auto",
                        help="compare with the original model: exact, structure, off; auto as in `migrate smoke`")
    parser.add_argument("--python", type=Path,
                        help="run the server as `PYTHON -m agent_server.start_server` (as in `migrate smoke`)")
    parser.add_argument("--port", type=int, help="port for the local server (default: a free one)")
    parser.add_argument("--start-timeout", type=float, default=app_process.DEFAULT_START_TIMEOUT,
                        help="seconds to wait for the server's /health (default: %(default)s)")
    parser.add_argument("--request-timeout", type=float, default=DEFAULT_REQUEST_TIMEOUT,
                        help="seconds to wait for each answer (default: %(default)s)")


# ---------------------------------------------------------------------------------------------------- the set


def endpoint_name(layout: MigrationLayout, given: str | None) -> str:
    if given:
        return given
    download = read_report(layout, "download")
    endpoint = (download or {}).get("payload", {}).get("model", {}).get("endpoint")
    if not endpoint:
        raise MigrateError("the download step names no serving endpoint (it read a model URI)",
                           "pass --endpoint NAME: the endpoint whose inference table to replay", code="RPL002")
    return endpoint


def gather(layout: MigrationLayout, args: argparse.Namespace) -> tuple[replay_set.ReplaySet, dict]:
    """The replay set, stored in the working directory, and what the report says about where it came from."""
    endpoint = endpoint_name(layout, args.endpoint)
    if args.limit < 1:
        raise MigrateError(f"--limit {args.limit} replays nothing", "pass --limit 1 or more", code="RPL007")
    client = workspace_client(args.profile, code="RPL002")
    table = replay_source.payload_table(client, endpoint, args.profile)
    print(f"reading logged requests of {endpoint} from {table.full_name} on warehouse {args.warehouse_id}",
          file=sys.stderr)
    rows = replay_source.read_rows(client, table, args.warehouse_id, args.limit, args.since,
                                   args.served_entity_id, args.profile)
    replay = replay_set.build_set(rows, args.limit, args.keep_responses, layout.root.name)
    if not replay.requests:
        raise MigrateError(f"nothing to replay: {table.full_name} gave {replay.rows} successful request(s)"
                           + (f" since {args.since}" if args.since else "")
                           + (f", {replay.skipped} of them unusable" if replay.skipped else ""),
                           "send the endpoint some traffic (logging takes up to an hour), widen or drop --since, "
                           "or check --served-entity-id", code="RPL007")
    path, digest = replay_set.write_set(layout, replay)
    source = {"endpoint": endpoint, "payload_table": table.full_name, "warehouse_id": args.warehouse_id,
              "since": args.since, "served_entity_id": args.served_entity_id, "limit": args.limit,
              "keep_responses": args.keep_responses,
              "set": {"path": layout.relative(path), "sha256": digest, "rows_read": replay.rows,
                      "duplicates": replay.duplicates, "skipped": replay.skipped,
                      "requests": len(replay.requests)}}
    return replay, source


def set_findings(replay: replay_set.ReplaySet, args: argparse.Namespace, where: str) -> list[Finding]:
    findings = list(replay.findings)
    entities = sorted({request.served_entity_id for request in replay.requests if request.served_entity_id})
    if len(entities) > 1 and not args.served_entity_id:
        findings.append(Finding("RPL009", "warning", where,
                                f"the replay set mixes {len(entities)} served entities ({', '.join(entities[:4])}): "
                                "requests an older model version answered are compared with this one",
                                "pass --served-entity-id with the migrated version's id (system.serving."
                                "served_entities maps ids to model versions)"))
    older = [request for request in replay.requests if request.format != replay_set.RESPONSES]
    if older:
        kinds = sorted({request.format for request in older})
        findings.append(Finding("RPL010", "info", where,
                                f"{len(older)} logged request(s) in older formats ({', '.join(kinds)}) were "
                                "translated to Responses requests for the app; the original got them as Model Serving "
                                "hands them to the agent",
                                "nothing to do; clients that still send these formats must move to Responses "
                                "`input` when they call the app"))
    return findings


# ---------------------------------------------------------------------------------------------------- the replay


def replay_against_app(layout: MigrationLayout, replay: replay_set.ReplaySet,
                       args: argparse.Namespace) -> tuple[dict, list[tuple[dict, dict, float]]]:
    """Serve the app and send every request (invoke, then stream): the server record, and each request's two
    answers with the seconds the non-streaming one took."""
    import httpx

    command = server_command(layout.root, args.python)
    server: dict = {"command": None, "health": None, "message": None, "log_tail": []}
    answers = []
    try:
        with app_process.serving(command, port=args.port, start_timeout=args.start_timeout,
                                 app_dir=layout.root) as running, httpx.Client(follow_redirects=False) as http:
            server.update(command=running.command, health="ok")
            print(f"replaying {len(replay.requests)} request(s) against {running.url}", file=sys.stderr)
            for request in replay.requests:
                started = time.monotonic()
                invoke = ask(http, running.url, request.app_request, False, args.request_timeout)
                seconds = time.monotonic() - started
                answers.append((invoke, ask(http, running.url, request.app_request, True, args.request_timeout),
                                seconds))
    except app_process.ServerNotReady as problem:
        server.update(health=problem.reason, message=problem.message, log_tail=problem.log_tail)
    return server, answers


def original_answers(original: OriginalRun | None, count: int) -> tuple[list[dict | None], str | None]:
    """The original model's answer (or error) to each request, and the error of a run that failed as a whole."""
    if original is None:
        return [None] * count, None
    print("waiting for the original model's answers", file=sys.stderr)
    answers = original.answer()
    if isinstance(answers, dict):  # {"error": ...}: the process itself failed
        return [None] * count, answers["error"]
    return answers, None


def record_findings(records: list[dict], mode: str, where: str) -> list[Finding]:
    findings = []
    for record in records:
        at = f"{where} request {record['id']}"
        if record["status"] == replay_compare.FAILED:
            findings.append(Finding("RPL013", "error", at, f"the app failed on a logged request the endpoint "
                                    f"answered: {record['error']}",
                                    "reproduce it with `migrate smoke --input FILE` (the request is in the replay "
                                    "set) and read the server log; fix agent_server/ and run `migrate replay` again"))
        elif record["status"] == replay_compare.UNCOMPARED and record["original_error"]:
            findings.append(Finding("RPL017", "warning", at, f"the original model raised on this logged request "
                                    f"here ({record['original_error']}), so the app's answer was compared with "
                                    "nothing", "run the request through the original by hand to see why (its "
                                    "environment, or a workspace resource it needs); keep responses with "
                                    "--keep-responses to compare with what the endpoint answered"))
        elif record["status"] == replay_compare.DIFFERED:
            difference = record["difference"]
            against = ("the logged response (structure" if record["part"] == "logged"
                       else f"the original model ({mode}")
            findings.append(Finding("RPL011", "error", at,
                                    f"the app's {record['part']} answer differs from {against} comparison): first "
                                    f"difference at {difference['path']}: expected {difference['expected']}, the "
                                    f"app has {difference['actual']}",
                                    "compare agent_server/ with the original's predict for this request (it is in "
                                    "the replay set); fix, then run `migrate replay` again"))
    return findings


def run_findings(server: dict, original: dict, mode: str, where: str) -> list[Finding]:
    findings = []
    if server.get("health") != "ok":
        tail = "\n".join(server.get("log_tail") or [])
        findings.append(Finding("RPL015", "error", where, f"{server.get('message')}; the server's last log lines:\n"
                                f"{tail}", "run `migrate smoke` first: it shows why the app does not start"))
    if original["status"] == "failed":
        findings.append(Finding("RPL014", "error", f"{where} original_mlflow_model",
                                f"the original model could not be run: {original['error']}",
                                "install the original's requirements or pass --python (as for `migrate smoke`); "
                                "--parity off compares with the logged responses only"))
    if original["status"] == "skipped":
        findings.append(Finding("RPL012", "warning", where, f"not compared with the original model: "
                                f"{original['reason']}", "run without --parity off next to original_mlflow_model/"))
    if mode == "structure":
        findings.append(Finding("RPL016", "info", where, "compared by structure only (item types and roles, tool "
                                "names and argument keys, custom_outputs keys): a real LLM's text varies",
                                "nothing to do; --parity exact compares everything but ids"))
    return findings


def replay(workdir, args: argparse.Namespace) -> StepReport:
    layout = find_app(workdir, args.app)
    where = layout.root.name
    logged, source = gather(layout, args)
    environment = processes.child_environment(dotenv=layout.root / ".env")
    mode = comparison_mode(args.parity, environment, args.profile)
    skipped = "--parity off" if args.parity == "off" else (
        None if (layout.original / "MLmodel").is_file() else f"no {layout.relative(layout.original)}/MLmodel")
    report = StepReport(STEP, inputs={key: value for key, value in source.items() if key != "set"}
                        | {"app": layout.relative(layout.root), "parity": args.parity,
                           "python": str(args.python) if args.python else None}, layout=layout)
    with ExitStack() as running:
        original = None
        if skipped is None:
            original = running.enter_context(OriginalRun(layout, [r.original_request for r in logged.requests],
                                                         original_python(layout.root, args.python), many=True))
        agent_files = agent_file_hashes(layout.root)
        server, answers = replay_against_app(layout, logged, args)
        originals, run_error = original_answers(original if answers else None, len(logged.requests))
    records = [replay_compare.judged(request, invoke, stream, originals[index], mode, seconds)
               for index, (request, (invoke, stream, seconds)) in enumerate(zip(logged.requests, answers))]
    original_record = {"status": "skipped" if skipped else "failed" if run_error else "ran" if answers else "skipped",
                       "reason": skipped or (None if answers else "the app did not answer"), "error": run_error}
    report.findings = (set_findings(logged, args, where) + run_findings(server, original_record, mode, where)
                       + record_findings(records, mode, where))
    report.payload = {"comparison": mode, "set": source["set"], "server": server, "original": original_record,
                      "agent_files": agent_files, "totals": replay_compare.totals(records), "requests": records}
    return report


def run(args: argparse.Namespace) -> StepReport:
    report = replay(args.workdir, args)
    totals = report.payload["totals"]
    latency = totals["latency_seconds"]
    print(f"replayed {totals['replayed']} logged request(s) ({totals['older_formats']} in older formats, "
          f"{report.payload['comparison']} comparison): {totals['agreed']} agreed, {totals['differed']} differed, "
          f"{totals['failed']} failed, {totals['uncompared']} not compared")
    print(f"  latency p50/p95: app {latency['app_p50']}/{latency['app_p95']} s, original "
          f"{latency['original_p50']}/{latency['original_p95']} s")
    print(f"  replay set (keep it private): {report.payload['set']['path']}")
    return report
