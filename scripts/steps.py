"""The one list of commands and step checks: it drives the CLI, `migrate check` and the tests.

Modules are named, not imported, so `migrate --help` stays fast and a step's heavy imports (MLflow)
load only when that step runs.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Command:
    name: str
    module: str
    summary: str
    # `checks.<module>:<function>` re-deriving this step's facts from files; None for commands that
    # write no report (check, demo).
    check: str | None = None

    def load(self):
        return importlib.import_module(self.module)

    def load_check(self) -> Callable | None:
        if self.check is None:
            return None
        module, function = self.check.split(":")
        return getattr(importlib.import_module(module), function)


COMMANDS: tuple[Command, ...] = (
    Command("download", "scripts.download", "Resolve an endpoint to its model version and download it.",
            check="checks.source:check_download"),
    Command("analyze", "scripts.analyze", "Describe the downloaded agent: entry file, class, framework, resources.",
            check="checks.analysis:check_analysis"),
    Command("scaffold", "scripts.scaffold", "Create the app folder from the scaffold and carry the migration facts in.",
            check="checks.scaffold:check_scaffold"),
    Command("code", "scripts.code_migration", "Move the agent's code into agent_server/ with @invoke/@stream handlers.",
            check="checks.code:check_code"),
    Command("setup", "scripts.setup", "Carry the agent's requirements into the app, lock them with uv, write .env "
            "and create the MLflow experiment.", check="checks.setup:check_setup"),
    Command("smoke", "scripts.smoke", "Start the app locally (or ask the deployed one) and compare its answers, "
            "streaming and not, with the original model's.", check="checks.smoke:check_smoke"),
    Command("resources", "scripts.resources", "Map the model's Databricks resources to app resources and user "
            "scopes in databricks.yml.", check="checks.bundle:check_bundle"),
    Command("check", "scripts.check", "Re-verify every step's report and files; exit 0 only when nothing is an error."),
    Command("demo", "scripts.demo", "Run the whole pipeline offline on an example agent against the workspace stand-in."),
)

# Steps that write a report, in pipeline order.
STEPS: tuple[Command, ...] = tuple(command for command in COMMANDS if command.check is not None)


def command_named(name: str) -> Command:
    for command in COMMANDS:
        if command.name == name:
            return command
    raise KeyError(name)
