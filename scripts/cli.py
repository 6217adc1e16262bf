"""`migrate`: one subcommand per step, errors printed in one place.

Exit codes: 0 success, 1 an expected failure (a `MigrateError`, or a check with errors), 2 usage,
3 a bug (traceback printed), 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path

from scripts.errors import MigrateError
from scripts.steps import COMMANDS

EXIT_FAILURE = 1
EXIT_BUG = 3
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
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
        command.load().configure(subparser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    module = __import__(args.command_module, fromlist=["run"])
    try:
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
