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
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import urlparse

import httpx

from checks.smoke import STEP, agent_file_hashes, smoke_findings
from scripts import app_process, smoke_identity
from scripts.errors import MigrateError
from scripts.layout import MigrationLayout, find_app
from scripts.reports import StepReport, write_report
from scripts.uv_tool import app_environment, uv_command

INPUT_EXAMPLE = "input_example.json"
MINIMAL_REQUEST = {"input": [{"role": "user", "content": "Hello! This is a smoke test."}]}
# Sent when the input example has no `context`, so the app is seen to accept it as Model Serving did.
SMOKE_CONTEXT = {"conversation_id": "migrate-smoke", "user_id": "migrate-smoke"}
PARITY_CHOICES = ("auto", "exact", "structure", "off")
# Below the ~120 s after which the Apps proxy cuts a request anyway.
DEFAULT_REQUEST_TIMEOUT = 110.0
ORIGINAL_TIMEOUT = 600.0
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}

# Runs in its own interpreter (the app's or the one given): loads the original model the way Model Serving
# does (MLflow's code-model loader puts code/ on sys.path) and records predict and predict_stream.
ORIGINAL_RUNNER = """
import json, sys
import mlflow.pyfunc
model_dir, request_path, output_path = sys.argv[1:4]
request = json.load(open(request_path))
model = mlflow.pyfunc.load_model(model_dir)
answer = model.predict(request)
try:
    events = list(model.predict_stream(request))
except NotImplementedError:  # a ChatAgent without predict_stream of its own
    events = None
def plain(value):
    return value.model_dump(exclude_none=True) if hasattr(value, "model_dump") else value
json.dump({"format": "chat_agent" if "messages" in request else "responses", "invoke": plain(answer),
           "stream": None if events is None else [plain(event) for event in events]}, open(output_path, "w"))
"""


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
    smoke_identity.configure(parser)  # user-identity: --users, --concurrency


# ---------------------------------------------------------------------------------------------------- the request


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


def workspace_host(env: dict[str, str], profile: str | None = None) -> str | None:
    """The workspace both sides talk to: DATABRICKS_HOST, else the host of the profile in the config file
    (`--profile`, DATABRICKS_CONFIG_PROFILE, else DEFAULT), as databricks-sdk resolves it."""
    if env.get("DATABRICKS_HOST"):
        return env["DATABRICKS_HOST"]
    import configparser

    config_file = Path(env.get("DATABRICKS_CONFIG_FILE") or Path.home() / ".databrickscfg").expanduser()
    profiles = configparser.ConfigParser(interpolation=None)
    try:
        profiles.read(config_file, encoding="utf-8")
    except configparser.Error:
        return None  # the SDK reports a broken config file itself, with more to say than we could
    section = profile or env.get("DATABRICKS_CONFIG_PROFILE") or "DEFAULT"
    if section == "DEFAULT":
        return profiles.defaults().get("host")
    return profiles.get(section, "host", fallback=None)


def comparison_mode(parity: str, env: dict[str, str], profile: str | None = None) -> str:
    """`exact` against a workspace on this machine (the deterministic stand-in), `structure` against a real one,
    whose LLM answers vary."""
    if parity in ("exact", "structure"):
        return parity
    host = urlparse(workspace_host(env, profile) or "").hostname
    return "exact" if host in LOCAL_HOSTS else "structure"


# ---------------------------------------------------------------------------------------------------- talking to an app


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


# ---------------------------------------------------------------------------------------------------- local server


def server_environment(app_dir: Path, uv_run: bool) -> dict[str, str]:
    """The smoke command's environment for the server; start_server loads the app's .env on top (no override)."""
    env = app_environment() if uv_run else dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def server_command(app_dir: Path, python: Path | None) -> app_process.ServerCommand:
    if python is not None:
        def argv(port: int) -> list[str]:
            return [str(python), "-m", "agent_server.start_server", "--host", app_process.LOCALHOST,
                    "--port", str(port)]
    else:
        uv = uv_command()

        def argv(port: int) -> list[str]:
            return [*uv, "run", "start-server", "--host", app_process.LOCALHOST, "--port", str(port)]
    return app_process.ServerCommand(argv, app_dir, server_environment(app_dir, python is None),
                                     description="app server")


def run_local_server(layout: MigrationLayout, request: dict, args: argparse.Namespace,
                     probes: smoke_identity.SmokeProbes | None = None) -> dict:
    """Start the app, ask it, stop it; what happened, for the payload."""
    command = server_command(layout.root, args.python)
    if probes is not None:  # user-identity: the server runs as this run's service principal on the stand-in
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
            if probes is not None:  # user-identity: concurrent users, --concurrency
                probes.after_main(server.url, request)
            if result["invoke"].get("status_code") != 200 or result["stream"].get("status_code") != 200:
                result["server"]["log_tail"] = server.log_tail()
    except app_process.ServerNotReady as problem:
        result["server"].update(health=problem.reason, message=problem.message, log_tail=problem.log_tail,
                                failed_at=problem.failed_at.__dict__ if problem.failed_at else None)
    return result


# ---------------------------------------------------------------------------------------------------- the original


def original_python(app_dir: Path, python: Path | None) -> Path:
    """The interpreter for the original model: --python, else the app's uv environment, else this one."""
    if python is not None:
        return python
    app_python = app_dir / ".venv" / "bin" / "python"
    return app_python if app_python.exists() else Path(sys.executable)


def original_environment(app_dir: Path) -> dict[str, str]:
    """This environment plus the app's .env (without overriding), so both sides talk to the same workspace."""
    from dotenv import dotenv_values

    env = dict(os.environ)
    dotenv = app_dir / ".env"
    if dotenv.is_file():
        for key, value in dotenv_values(dotenv).items():
            if value is not None:
                env.setdefault(key, value)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


class OriginalRun:
    """predict and predict_stream of original_mlflow_model/ in a separate process.

    Started before the app's server so the two load MLflow and the agent at the same time (on a small machine
    that halves the step's wait); `answer()` waits for it, and leaving the `with` block always stops it.
    """

    def __init__(self, layout: MigrationLayout, request: dict, python: Path):
        self._scratch = tempfile.TemporaryDirectory(prefix="migrate-original-")
        scratch_dir = Path(self._scratch.name)
        (scratch_dir / "request.json").write_text(json.dumps(request), encoding="utf-8")
        self._answer_path = scratch_dir / "answer.json"
        self._log_path = scratch_dir / "original.log"
        argv = [str(python), "-c", ORIGINAL_RUNNER, str(layout.original), str(scratch_dir / "request.json"),
                str(self._answer_path)]
        with open(self._log_path, "w", encoding="utf-8") as log:
            # cwd is the scratch folder: a tracking store the agent creates by default lands there, not in the app.
            self._process = subprocess.Popen(argv, cwd=scratch_dir, env=original_environment(layout.root),
                                             stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                             start_new_session=True)

    def answer(self) -> dict:
        """{invoke, stream} as the original answered, or {error}."""
        try:
            self._process.wait(timeout=ORIGINAL_TIMEOUT)
        except subprocess.TimeoutExpired:
            return {"error": f"predict did not finish within {ORIGINAL_TIMEOUT:.0f}s"}
        if self._process.returncode != 0:
            tail = app_process.read_tail(self._log_path, 15)
            return {"error": f"exit code {self._process.returncode}: " + "\n".join(tail)}
        return json.loads(self._answer_path.read_text(encoding="utf-8"))

    def __enter__(self) -> OriginalRun:
        return self

    def __exit__(self, *exc_info) -> None:
        app_process.stop(self._process)
        self._scratch.cleanup()


def parity_skipped(layout: MigrationLayout, parity: str) -> str | None:
    """Why the original is not run, or None when it is."""
    if parity == "off":
        return "--parity off"
    if not (layout.original / "MLmodel").is_file():
        return f"no {layout.relative(layout.original)}/MLmodel next to the app"
    return None


def parity_record(original: OriginalRun | None, skipped: str | None, answered: bool) -> dict:
    if skipped is not None:
        return {"status": "skipped", "reason": skipped, "original": None, "error": None}
    if not answered:
        return {"status": "skipped", "reason": "the app did not answer", "original": None, "error": None}
    print("waiting for the original model's answer to the same request", file=sys.stderr)
    answer = original.answer()
    if "error" in answer:
        return {"status": "failed", "reason": None, "original": None, "error": answer["error"]}
    return {"status": "ran", "reason": None, "original": answer, "error": None}


# ---------------------------------------------------------------------------------------------------- deployed app


def workspace_client(profile: str | None):
    from databricks.sdk import WorkspaceClient

    try:
        return WorkspaceClient(profile=profile) if profile else WorkspaceClient()
    except Exception as error:  # the SDK raises ValueError and its own errors for unusable configurations
        raise MigrateError(f"no usable Databricks authentication{f' for profile {profile}' if profile else ''}: "
                           f"{error}", "run `databricks auth login --profile PROFILE` and pass --profile PROFILE",
                           code="SMK022") from None


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


# ---------------------------------------------------------------------------------------------------- the step


def smoke(workdir: Path, args: argparse.Namespace) -> StepReport:
    deployed = bool(args.url or args.app_name)
    layout = find_app(workdir, args.app) if (args.app or not deployed) else _optional_app(workdir)
    request, source, original_request = smoke_request(layout, args.input)
    report = StepReport(STEP, inputs={
        "target": "deployed" if deployed else "local", "app": layout.relative(layout.root) if layout.is_app else None,
        "url": args.url, "app_name": args.app_name, "input": source, "parity": args.parity,
        "python": str(args.python) if args.python else None})
    mode = comparison_mode(args.parity, original_environment(layout.root) if layout.is_app else dict(os.environ),
                           args.profile)
    payload: dict = {"target": "deployed" if deployed else "local", "comparison": mode,
                     "request": {"source": source, "body": request}}
    if deployed:
        client = workspace_client(args.profile)
        url = args.url.rstrip("/") if args.url else app_url(client, args.app_name)
        print(f"asking the deployed app at {url}", file=sys.stderr)
        payload["url"] = url
        payload["server"] = None
    skipped = parity_skipped(layout, args.parity)
    with ExitStack() as running:
        probes = None
        if not deployed:  # user-identity: acting as each user, and --concurrency (scripts/smoke_identity.py)
            probes = smoke_identity.SmokeProbes(layout, request, args, original_environment(layout.root),
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
    write_report(layout, report)
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
