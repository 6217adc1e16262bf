"""`migrate smoke`: the app answers like the original model did, streaming and not.

Local (default): start the app's server in its own process group on a free port (`uv run start-server`,
or `--python PATH -m agent_server.start_server`), wait for /health, send the input example once as is and
once with `"stream": true`, stop the server. Meanwhile the original model runs on the same request in its own
process (`mlflow.pyfunc.load_model` on original_mlflow_model/), and the answers are compared.
Deployed (`--url APP_URL` or `--app-name NAME`): the same requests against the app, with a token from
databricks-sdk for the profile.

The report records the raw answers; `checks.smoke.smoke_findings` derives every finding from that record,
here and again in `migrate check`.
"""

from __future__ import annotations

import argparse
import sys
from contextlib import ExitStack
from pathlib import Path

from checks.smoke import STEP, agent_file_hashes, smoke_findings
from scripts import app_process, processes, smoke_identity
from scripts.core.errors import MigrateError
from scripts.core.layout import MigrationLayout, find_app
from scripts.core.reports import StepReport
from scripts.smoke_original import OriginalRun, original_python, parity_record, parity_skipped
from scripts.smoke_request import PARITY_CHOICES, comparison_mode, refuse_plain_http, smoke_request
from scripts.smoke_server import app_url, ask_both, auth_headers, run_local_server
from scripts.workspace import workspace_client

# Below the ~120 s after which the Apps proxy cuts a request anyway.
DEFAULT_REQUEST_TIMEOUT = 110.0

__all__ = ["comparison_mode", "configure", "run", "smoke", "smoke_request"]


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--app", type=Path, help="the app folder (default: the one app folder in --workdir)")
    parser.add_argument("--input", type=Path,
                        help="a request (JSON) to send (default: the original model's input_example.json)")
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--url", help="smoke-test a deployed app at this URL instead of a local server")
    target.add_argument("--app-name", help="smoke-test the deployed app of this name (its URL from the workspace)")
    parser.add_argument("--profile", help="Databricks CLI profile for --url/--app-name (token and app lookup)")
    parser.add_argument("--python", type=Path,
                        help="run the server as `PYTHON -m agent_server.start_server` in the app instead of "
                             "`uv run start-server` (an interpreter that has the app's dependencies)")
    parser.add_argument("--port", type=int, help="port for the local server (default: a free one)")
    parser.add_argument("--parity", choices=PARITY_CHOICES, default="auto",
                        help="compare with the original model: exact (ids aside; a deterministic workspace such as "
                             "the stand-in), structure (a real workspace, where LLM text varies), off; auto picks "
                             "exact when DATABRICKS_HOST is this machine, else structure")
    parser.add_argument("--start-timeout", type=float, default=app_process.DEFAULT_START_TIMEOUT,
                        help="seconds to wait for the server's /health (default: %(default)s)")
    parser.add_argument("--request-timeout", type=float, default=DEFAULT_REQUEST_TIMEOUT,
                        help="seconds to wait for each answer (default: %(default)s)")
    smoke_identity.configure(parser)  # --users, --concurrency


# ---------------------------------------------------------------------------------------------------- the step


def smoke(workdir: Path, args: argparse.Namespace) -> StepReport:
    deployed = bool(args.url or args.app_name)
    layout = find_app(workdir, args.app) if (args.app or not deployed) else _optional_app(workdir)
    request, source, original_request = smoke_request(layout, args.input)
    report = StepReport(STEP, inputs={
        "target": "deployed" if deployed else "local", "app": layout.relative(layout.root) if layout.is_app else None,
        "url": args.url, "app_name": args.app_name, "input": source, "parity": args.parity,
        "python": str(args.python) if args.python else None}, layout=layout)
    environment = processes.child_environment(dotenv=layout.root / ".env" if layout.is_app else None)
    mode = comparison_mode(args.parity, environment, args.profile)
    payload: dict = {"target": "deployed" if deployed else "local", "comparison": mode,
                     "request": {"source": source, "body": request}}
    if deployed:
        client = workspace_client(args.profile, code="SMK022")
        url = args.url.rstrip("/") if args.url else app_url(client, args.app_name)
        refuse_plain_http(url)
        print(f"asking the deployed app at {url}", file=sys.stderr)
        payload["url"] = url
        payload["server"] = None
    skipped = parity_skipped(layout, args.parity)
    with ExitStack() as running:
        probes = None
        if not deployed:  # acting as each user, and --concurrency (scripts/smoke_identity.py)
            probes = smoke_identity.SmokeProbes(layout, request, args,
                                                processes.child_environment(dotenv=layout.root / ".env"),
                                                original_python(layout.root, args.python), skipped is None)
            running.callback(probes.close)
        original = None
        if skipped is None:
            print(f"running the original model ({layout.relative(layout.original)}) on the same request",
                  file=sys.stderr)
            original = running.enter_context(OriginalRun(layout, original_request,
                                                         original_python(layout.root, args.python)))
        if deployed:
            payload["invoke"], payload["stream"] = ask_both(payload["url"], request, args.request_timeout,
                                                            auth_headers(client))
        else:
            payload["agent_files"] = agent_file_hashes(layout.root)
            payload.update(run_local_server(layout, request, args, probes))
            payload.update(probes.payload())
        answered = all((payload.get(part) or {}).get("status_code") == 200 for part in ("invoke", "stream"))
        payload["parity"] = parity_record(original, skipped, answered)
    payload.setdefault("agent_files", {})
    where = layout.root.name if not deployed else payload["url"]
    report.findings = smoke_findings(payload, where)
    report.payload = payload
    return report


def _optional_app(workdir: Path) -> MigrationLayout:
    """For a deployed smoke test the app folder is optional: its reports folder, else the working directory's."""
    try:
        return find_app(workdir)
    except MigrateError:
        return MigrationLayout.for_workdir(workdir)


def run(args: argparse.Namespace) -> StepReport:
    report = smoke(args.workdir, args)
    payload = report.payload
    target = payload.get("url") or "the app"
    print(f"smoke test of {target} ({payload['target']}), request from {payload['request']['source']}")
    for part in ("invoke", "stream"):
        answer = payload.get(part)
        if answer is not None:
            print(f"  {part:<7} HTTP {answer.get('status_code')}{' ' + answer['error'] if answer.get('error') else ''}")
    parity = payload["parity"]
    print(f"  parity  {parity['status']} ({payload['comparison']} comparison)"
          + (f": {parity['reason']}" if parity.get("reason") else ""))
    return report
