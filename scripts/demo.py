"""`migrate demo`: the whole pipeline, offline, on one of `examples/`.

It starts the workspace stand-in, logs and registers the example into a local MLflow registry, puts a
Model Serving endpoint in front of it, then runs every step as a user would (`migrate <step>` in a
subprocess, with DATABRICKS_HOST pointing at the stand-in) and ends with `migrate check`.
Later steps join the pipeline by adding a line to `pipeline`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from scripts.errors import MigrateError
from scripts.layout import MigrationLayout

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples"
DEFAULT_EXAMPLE = "openai_tools"
REGISTRY_DIR = ".demo-registry"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.set_defaults(workdir=None)  # the demo's default is a new folder, not the current one
    parser.add_argument("--example", default=DEFAULT_EXAMPLE,
                        help=f"which agent of examples/ to migrate (default: {DEFAULT_EXAMPLE})")


@dataclass(frozen=True)
class StepRun:
    argv: list[str]
    seconds: float
    exit_code: int
    output: str


def new_workdir() -> Path:
    return Path.cwd() / f"demo-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


def load_catalog():
    """examples/catalog.py, loaded from its file: the examples are sample data, not a package we ship."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("agent_migrate_examples_catalog", EXAMPLES_DIR / "catalog.py")
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


def run_migrate(argv: list[str], env: dict) -> StepRun:
    """One `migrate` command in its own process, exactly as a user runs it."""
    started = time.monotonic()
    completed = subprocess.run([sys.executable, "-m", "scripts.cli", *argv], env=env,
                               capture_output=True, text=True)
    return StepRun(argv, time.monotonic() - started, completed.returncode, completed.stdout + completed.stderr)


def app_name_for(example: str) -> str:
    return f"{example.replace('_', '-')}-app"


def pipeline(endpoint: str, registered: dict, workdir: Path, app_name: str) -> list[list[str]]:
    """The steps the demo runs, in order, as a user would type them; each later issue adds its step here."""
    where = ["--workdir", str(workdir)]
    app = ["--app", str(workdir / app_name)]
    return [
        ["download", "--endpoint", endpoint, "--registry-uri", registered["registry_uri"],
         "--tracking-uri", registered["tracking_uri"], *where],
        ["analyze", *where],
        # A second demo in the same workdir refreshes the app: --force keeps files later steps changed.
        ["scaffold", "--app-name", app_name, *where, *(["--force"] if (workdir / app_name).exists() else [])],
        ["code", "--mode", "sync", *app, *where],
        ["setup", *app, *where],
        ["resources", *app, *where],
        ["check", *app, *where],
    ]


def run(args: argparse.Namespace) -> int:
    import standin

    catalog = load_catalog()
    if args.example not in catalog.EXAMPLES:
        raise MigrateError(f"no example named {args.example!r}",
                           f"pass --example with one of: {', '.join(catalog.EXAMPLES)}")
    workdir = (args.workdir or new_workdir()).resolve()
    (workdir / REGISTRY_DIR).mkdir(parents=True, exist_ok=True)
    endpoint = f"{args.example.replace('_', '-')}-endpoint"
    total = time.monotonic()

    with standin.running() as workspace:
        env = workspace.environ()
        print(f"workspace stand-in at {workspace.url}", file=sys.stderr)
        print(f"registering examples/{args.example} in {workdir / REGISTRY_DIR}", file=sys.stderr)
        registered = register_once(catalog, args.example, workdir, env)
        workspace.add_endpoint(standin.endpoint_json(endpoint, registered["name"], registered["version"]))

        runs = []
        for argv in pipeline(endpoint, registered, workdir, app_name_for(args.example)):
            print(f"$ migrate {' '.join(argv)}", file=sys.stderr)
            step_run = run_migrate(argv, env)
            runs.append(step_run)
            if step_run.exit_code != 0:
                print(step_run.output, file=sys.stderr)
                raise MigrateError(
                    f"the demo stopped: `migrate {argv[0]}` exited {step_run.exit_code} (its output is above)",
                    "this is the offline demo on our own example, so it is a bug in agent-migrate: please report it",
                )

    app_layout = MigrationLayout.for_app(workdir / app_name_for(args.example))
    print(runs[-1].output.rstrip())
    print()
    print(f"demo finished in {time.monotonic() - total:.1f}s; example {args.example}, endpoint {endpoint}")
    for step_run in runs:
        print(f"  migrate {step_run.argv[0]:<10} {step_run.seconds:6.1f}s")
    print(f"working directory: {workdir}")
    for path, what in ((app_layout.original, "the downloaded model, never modified"),
                       (app_layout.root, "the app, ready for `databricks bundle deploy`"),
                       (app_layout.reports, "one report per step"),
                       (app_layout.source, "the original's facts a reviewer checks against")):
        if path.exists():
            print(f"  {app_layout.relative(path) + '/':<40} {what}")
    print(f"re-check any time: uv run migrate check --app {app_layout.root}")
    return 0
