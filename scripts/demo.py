"""`migrate demo`: the whole pipeline, offline, on one of `examples/`.

It starts the workspace stand-in, logs and registers the example into a local MLflow registry, puts a
Model Serving endpoint in front of it, then runs every step as a user would (`migrate <step>` in a
subprocess, with DATABRICKS_HOST pointing at the stand-in): one download, then a sync app and an async app
built from it side by side (scripts/demo_runs.py), each in the order of AGENTS.md's table and ending with
`migrate check`. Between the async app's code and smoke steps it does the assistant's part, the async
conversion recorded for the example. The endpoint logs to an inference table the demo fills
(scripts/replay_demo.py), so `migrate replay` runs too. Later steps join the pipeline by adding a line to
`pipeline`.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from scripts import app_process, processes, replay_demo
from scripts.core import atomic
from scripts.core.errors import MigrateError
from scripts.core.layout import MigrationLayout
from scripts.demo_runs import ASSISTANT, AssistantEdit, Step, failed, run_in_order, run_side_by_side

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples"
DEFAULT_EXAMPLE = "openai_tools"
REGISTRY_DIR = ".demo-registry"
STANDIN_RECORD = "standin.json"  # the port and token of the workdir's last stand-in


def configure(parser: argparse.ArgumentParser) -> None:
    parser.set_defaults(workdir=None)  # the demo's default is a new folder, not the current one
    parser.add_argument("--example", default=DEFAULT_EXAMPLE,
                        help=f"which agent of examples/ to migrate (default: {DEFAULT_EXAMPLE})")
    parser.add_argument("--mode", choices=("sync", "async", "both"), default="both",
                        help="build the sync app, the async app, or both from one download (default: both)")


def new_workdir() -> Path:
    return Path.cwd() / f"demo-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


def load_example_module(name: str):
    """A module of examples/ (the catalog, the recorded async conversions), loaded from its file: the
    examples are sample data, not a package we ship."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"agent_migrate_examples_{name}", EXAMPLES_DIR / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def register_once(catalog, example: str, workdir: Path, env: dict) -> dict:
    """Register the example into the demo's registry, reusing an earlier registration of the same workdir.

    Logging again would make a new model version with new files, which the download step would rightly
    refuse to put over the one already downloaded.
    """
    record = workdir / REGISTRY_DIR / f"{example}.json"
    if record.exists():
        return json.loads(record.read_text())
    registered = catalog.register_example(example, workdir / REGISTRY_DIR, env)
    record.write_text(json.dumps(registered, indent=2))
    return registered


def standin_identity(workdir: Path) -> dict:
    """The port and token of the workdir's last stand-in, so a second demo's apps see the same workspace
    settings as the first's: smoke and replay reuse the original's remembered answers and the code check its
    remembered import probe (both keyed by DATABRICKS_HOST and the token) instead of loading MLflow again."""
    record = workdir / REGISTRY_DIR / STANDIN_RECORD
    try:
        identity = json.loads(record.read_text(encoding="utf-8"))
        port, token = int(identity["port"]), str(identity["token"])
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return {"token": token} if app_process.port_is_taken(port, reuse_address=True) else {"port": port, "token": token}


def remember_standin_identity(workdir: Path, workspace) -> None:
    port = int(workspace.url.rsplit(":", 1)[1])
    atomic.write_text(workdir / REGISTRY_DIR / STANDIN_RECORD, json.dumps({"port": port, "token": workspace.token}))


def app_name_for(example: str, mode: str) -> str:
    stem = example.replace("_", "-")
    return f"{stem}-app" if mode == "sync" else f"{stem}-{mode}-app"


def async_conversion(example: str, app_dir: Path) -> AssistantEdit:
    conversions = load_example_module("async_conversions")

    def apply() -> str:
        edits = conversions.convert(example, app_dir / "agent_server" / "agent.py")
        # The async client's transport is a dependency of the app, added as the assistant would add it.
        try:
            processes.run([*processes.uv_command(), "add", "--no-sync", conversions.FAST_TRANSPORT_DEPENDENCY],
                          cwd=app_dir, timeout=300)
        except processes.CommandFailed as error:
            raise MigrateError(f"could not add {conversions.FAST_TRANSPORT_DEPENDENCY} to {app_dir.name}: {error}",
                               "check that uv can reach the package index, then run the demo again") from None
        return (f"{edits} edits to {app_dir.name}/agent_server/agent.py, from examples/async_conversions.py; "
                f"`uv add {conversions.FAST_TRANSPORT_DEPENDENCY}`")

    return AssistantEdit("convert the blocking calls the code step listed (COD010) to async", app_dir, apply)


@dataclass(frozen=True)
class Plan:
    """The download and analysis once, then each app's own steps (`per_app`), which share nothing but what
    the first two wrote and so run side by side."""

    shared: list[Step]
    per_app: list[list[Step]]

    @property
    def steps(self) -> list[Step]:
        return [*self.shared, *(step for app_steps in self.per_app for step in app_steps)]


def pipeline(example: str, endpoint: str, registered: dict, workdir: Path, modes: list[str]) -> Plan:
    """The steps the demo runs as a user would type them: the download once, then one app per mode, each in
    the order of AGENTS.md's table (setup writes the .env the code check loads, so it comes before code)."""
    where = ["--workdir", str(workdir)]
    shared: list[Step] = [
        ["download", "--endpoint", endpoint, "--registry-uri", registered["registry_uri"],
         "--tracking-uri", registered["tracking_uri"], *where],
        ["analyze", *where],
    ]
    per_app = []
    for mode in modes:
        app_name = app_name_for(example, mode)
        app = ["--app", str(workdir / app_name)]
        steps: list[Step] = []
        per_app.append(steps)
        # A second demo in the same workdir refreshes its own apps: scaffold --force keeps the files later
        # steps wrote, and code --force writes the agent again over the assistant's edit of the last run.
        refresh = ["--force"] if (workdir / app_name).exists() else []
        steps.append(["scaffold", "--app-name", app_name, *where, *refresh])
        steps.append(["setup", *app, *where])
        steps.append(["code", "--mode", mode, *app, *where, *refresh])
        if mode == "async":
            steps.append(async_conversion(example, workdir / app_name))
        # The harness's own interpreter has the example's packages; a real app runs `uv run start-server`.
        steps.append(["smoke", *app, "--python", sys.executable, *where])
        # The endpoint's logged traffic, which the demo put in the stand-in's inference table (scripts/replay_demo.py).
        steps.append(["replay", *app, "--warehouse-id", replay_demo.WAREHOUSE_ID, "--python", sys.executable, *where])
        steps.append(["resources", *app, *where])
        steps.append(["check", *app, *where])
    return Plan(shared, per_app)


def demo_modes(requested: str, example: str) -> list[str]:
    """The modes to build; async needs the conversion the assistant would do, recorded for the example."""
    if requested == "sync":
        return ["sync"]
    if example in load_example_module("async_conversions").ASYNC_CONVERSIONS:
        return ["sync", "async"] if requested == "both" else ["async"]
    if requested == "async":
        raise MigrateError(f"examples/{example} has no recorded async conversion, so its async app would stop "
                           "at the blocking calls the assistant converts",
                           "run the demo with --mode sync, or add the conversion to examples/async_conversions.py")
    print(f"examples/{example} has no recorded async conversion: building the sync app only", file=sys.stderr)
    return ["sync"]


def run(args: argparse.Namespace) -> int:
    import standin

    catalog = load_example_module("catalog")
    if args.example not in catalog.EXAMPLES:
        raise MigrateError(f"no example named {args.example!r}",
                           f"pass --example with one of: {', '.join(catalog.EXAMPLES)}")
    modes = demo_modes(args.mode, args.example)
    workdir = (args.workdir or new_workdir()).resolve()
    (workdir / REGISTRY_DIR).mkdir(parents=True, exist_ok=True)
    endpoint = f"{args.example.replace('_', '-')}-endpoint"
    total = time.monotonic()

    with standin.running(**standin_identity(workdir)) as workspace:
        remember_standin_identity(workdir, workspace)
        # Each step is its own interpreter: where PYTHONDONTWRITEBYTECODE is set, keep compiled modules in the
        # user's cache (as smoke does for its servers) so each step does not compile MLflow again; and MLflow's
        # model catalog comes from its package, not the network (scripts/app_process.py).
        env = app_process.local_run_environment(workspace.environ())
        print(f"workspace stand-in at {workspace.url}", file=sys.stderr)
        print(f"registering examples/{args.example} in {workdir / REGISTRY_DIR}", file=sys.stderr)
        registered = register_once(catalog, args.example, workdir, env)
        replay_demo.serve_logged_traffic(workspace, endpoint, registered, EXAMPLES_DIR / args.example)

        plan = pipeline(args.example, endpoint, registered, workdir, modes)
        runs = run_in_order(plan.shared, env, threading.Event())
        if not failed(runs):
            runs += run_side_by_side(plan.per_app, env)
        stopped = failed(runs)
        if stopped is not None:
            print(stopped.output, file=sys.stderr)
            raise MigrateError(
                f"the demo stopped: `migrate {stopped.argv[0]}` exited {stopped.exit_code} (its output is above)",
                "this is the offline demo on our own example, so it is a bug in agent-migrate: please report it",
            )

    for step_run in runs:
        if step_run.argv[0] == "check":
            print(step_run.output.rstrip())
            print()
    print(f"demo finished in {time.monotonic() - total:.1f}s; example {args.example}, endpoint {endpoint}")
    for step_run in runs:
        what = "assistant edit" if step_run.argv[0] == ASSISTANT else f"migrate {step_run.argv[0]}"
        print(f"  {what:<18} {step_run.seconds:6.1f}s  {shown_app(step_run.argv)}")
    print(f"working directory: {workdir}")
    workdir_layout = MigrationLayout.for_workdir(workdir)
    written = [(workdir_layout.original, "the downloaded model, never modified")]
    for mode in modes:
        app_layout = MigrationLayout.for_app(workdir / app_name_for(args.example, mode))
        written += [(app_layout.root, f"the {mode} app, ready for `databricks bundle deploy`"),
                    (app_layout.reports, "one report per step"),
                    (app_layout.source, "the original's facts a reviewer checks against")]
    width = max(len(workdir_layout.relative(path)) for path, _ in written) + 3
    for path, what in written:
        print(f"  {workdir_layout.relative(path) + '/':<{width}} {what}")
    print(f"run it all again (the same registration and download, a stand-in on the same port when it is free): "
          f"uv run migrate demo --workdir {workdir}")
    # Not `migrate check` alone: the code check imports the agent, which reaches the workspace at import,
    # and the stand-in the apps' settings point at stops with the demo.
    return 0


def shown_app(argv: list[str]) -> str:
    """Which app a step worked on, for the timing table."""
    if "--app" in argv:
        return Path(argv[argv.index("--app") + 1]).name
    if "--app-name" in argv:
        return argv[argv.index("--app-name") + 1]
    return ""
