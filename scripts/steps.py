"""The one list of commands and steps: it drives the CLI, `migrate check`, the demo and the tests.

A step's name is also the name of its report (`migration/reports/<name>.json`), its schema
(`checks/schemas/<name>.schema.json`) and its check (`checks.<module>:check_<name>`); the registry adds what
cannot be derived: its module, its skill and the prefixes of the finding codes it and its check emit.
Modules are named, not imported, so `migrate --help` stays fast and a step's heavy imports (MLflow, libcst)
load only when that step runs.
"""

from __future__ import annotations

import importlib
import inspect
import re
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
    # The skill in skills/ that explains the step and every finding code below.
    skill: str | None = None
    # Finding codes start with one of these (the step's own and its check's).
    code_prefixes: tuple[str, ...] = ()
    # A step a migration may leave out (replay needs an endpoint with inference tables): `migrate check`
    # reports its absence as info, not as a lost step (scripts/check.py).
    optional: bool = False
    # What the step writes: "app" (one app folder, so steps on two apps of a workdir run side by side) or
    # "workdir" (the working directory's own files, which it also refreshes in every app: it runs alone).
    # scripts/workdir_lock.py takes the locks.
    writes: str = "app"

    def load(self):
        return importlib.import_module(self.module)

    def load_check(self) -> Callable | None:
        if self.check is None:
            return None
        module, function = self.check.split(":")
        return getattr(importlib.import_module(module), function)

    def rederived_codes(self) -> frozenset[str]:
        """The finding codes this step's check derives again from the files: those written in its module.

        An error the step recorded under another code is carried into the verdict as recorded; one under
        these codes is trusted to the check, which sees the files as they are now (a blocking call the
        assistant converted after the code step is gone). A code the scan misses is carried: the safe side.
        """
        if self.check is None:
            return frozenset()
        module = importlib.import_module(self.check.split(":")[0])
        # The check's module and the checks/ modules it calls (checks/code.py calls checks/code_claims.py …).
        sources = [inspect.getsource(module)]
        sources += [inspect.getsource(value) for value in vars(module).values()
                    if inspect.ismodule(value) and value.__name__.startswith("checks.")]
        sources += [inspect.getsource(inspect.getmodule(value)) for value in vars(module).values()
                    if inspect.isfunction(value) and value.__module__.startswith("checks.")
                    and value.__module__ != module.__name__]
        return frozenset(re.findall(r"\b[A-Z]{3}[0-9]{3}\b", "\n".join(sources)))


COMMANDS: tuple[Command, ...] = (
    Command("download", "scripts.download", "Resolve an endpoint to its model version and download it.",
            check="checks.download:check_download", skill="download-model", code_prefixes=("DLD", "SRC"),
            writes="workdir"),
    Command("analyze", "scripts.analyze", "Describe the downloaded agent: entry file, class, framework, resources.",
            check="checks.analyze:check_analyze", skill="download-model", code_prefixes=("ANA",),
            writes="workdir"),
    Command("scaffold", "scripts.scaffold", "Create the app folder from the scaffold and carry the migration facts in.",
            check="checks.scaffold:check_scaffold", skill="scaffold-app", code_prefixes=("SCF",)),
    Command("setup", "scripts.setup", "Carry the agent's requirements into the app, lock them with uv, write .env "
            "and create the MLflow experiment.", check="checks.setup:check_setup", skill="setup-app",
            code_prefixes=("SET",)),
    Command("code", "scripts.code", "Move the agent's code into agent_server/ with @invoke/@stream handlers.",
            check="checks.code:check_code", skill="migrate-code", code_prefixes=("COD",)),
    Command("smoke", "scripts.smoke", "Start the app locally (or ask the deployed one) and compare its answers, "
            "streaming and not, with the original model's.", check="checks.smoke:check_smoke",
            skill="test-locally", code_prefixes=("SMK",)),
    Command("replay", "scripts.replay", "Replay the endpoint's logged requests (its inference table) against the app "
            "and the original model, and compare.", check="checks.replay:check_replay", skill="replay-traffic",
            code_prefixes=("RPL",), optional=True),
    Command("resources", "scripts.resources", "Map the model's Databricks resources to app resources and user "
            "scopes in databricks.yml.", check="checks.resources:check_resources", skill="configure-resources",
            code_prefixes=("RES",)),
    Command("check", "scripts.check", "Re-verify every step's report and files; exit 0 (PASS) only when every check "
            "ran and nothing is an error.", skill="review-migration", code_prefixes=("CHK",)),
    Command("demo", "scripts.demo", "Run the whole pipeline offline on an example agent against the workspace stand-in."),
)

# Steps that write a report, in pipeline order (AGENTS.md's table follows it).
STEPS: tuple[Command, ...] = tuple(command for command in COMMANDS if command.check is not None)


def command_named(name: str) -> Command:
    for command in COMMANDS:
        if command.name == name:
            return command
    raise KeyError(name)


def steps_before(name: str) -> tuple[Command, ...]:
    """The steps that come before `name` in the pipeline."""
    names = [step.name for step in STEPS]
    return STEPS[:names.index(name)]
