"""`migrate`: one subcommand per step; the step contract is enforced here, in one place.

A step's `run(args)` returns its `StepReport` (with the layout it belongs to); the CLI writes it to
`migration/reports/<step>.json` (validated against the step's schema), prints its findings through the one
renderer (`scripts.core.render`) and exits 1 when any of them is an error, so no step can record an error
and exit 0. Commands that are not steps (check, demo) return their exit code.

Exit codes: 0 success, 1 an expected failure (a `MigrateError`, an error finding, a FAIL verdict), 2 usage,
3 a bug (traceback printed), 4 an UNVERIFIED verdict (see `scripts.core.findings`), 130 interrupted.

Only the module of the command being run is imported, so `migrate --help` does not load MLflow or libcst.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path

from scripts.core.errors import MigrateError
from scripts.steps import COMMANDS, STEPS

EXIT_FAILURE = 1
EXIT_BUG = 3
EXIT_INTERRUPTED = 130


def chosen_command(argv: list[str]) -> str | None:
    """The subcommand named in `argv`: the first word that is one (no global option takes a value)."""
    names = {command.name for command in COMMANDS}
    return next((word for word in argv if word in names), None)


def build_parser(configure: str | None = "*") -> argparse.ArgumentParser:
    """The parser; only the command named `configure` gets its options (all of them when it is `"*"`)."""
    parser = argparse.ArgumentParser(
        prog="migrate",
        description="Migrate an MLflow agent from a Databricks Model Serving endpoint to Databricks Apps.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        subparser = subparsers.add_parser(command.name, help=command.summary, description=command.summary)
        subparser.add_argument(
            "--workdir", type=Path, default=Path.cwd(),
            help="the migration's working directory, holding original_mlflow_model/ (default: the current one)",
        )
        subparser.set_defaults(command_module=command.module)
        if configure in (command.name, "*"):
            command.load().configure(subparser)
    return parser


def finish_step(report) -> int:
    """Write the step's report (validated), print what it found through the one renderer, give its exit code."""
    from scripts.core.findings import has_errors
    from scripts.core.render import as_lines
    from scripts.core.reports import write_step_report

    write_step_report(report)
    if report.findings:
        print(as_lines(report.findings))
    print(f"{report.step}: {report.status}")
    return EXIT_FAILURE if has_errors(report.findings) else 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(chosen_command(argv)).parse_args(argv)
    module = __import__(args.command_module, fromlist=["run"])
    try:
        step = next((step for step in STEPS if step.name == args.command), None)
        if step is not None:
            from scripts.workdir_lock import holding_step_locks

            with holding_step_locks(args, step.writes):
                return finish_step(module.run(args))
        return module.run(args)
    except MigrateError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print("interrupted: nothing was left half-written; re-run the command to start again", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception:  # a bug: show everything
        traceback.print_exc()
        print("\nThis is a bug in agent-migrate, not in your input: please report it with the traceback above.",
              file=sys.stderr)
        return EXIT_BUG


if __name__ == "__main__":
    sys.exit(main())
