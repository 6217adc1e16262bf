"""The step cores as `migrate` runs them: the core, then its report written, as the CLI's `finish_step` does.

A step's core returns its report and the CLI writes it; tests that chain steps in-process (scaffold, then
code, then the check) call these, so each step's report is on disk for the next one, as after a real run.
"""

from __future__ import annotations

import importlib
from typing import Callable

from scripts.core.reports import StepReport, write_step_report


def written(report: StepReport) -> StepReport:
    write_step_report(report)
    return report


def _as_the_cli_runs(module: str, core: str) -> Callable[..., StepReport]:
    def run(*args, **kwargs) -> StepReport:
        # Looked up at each call, so a test's monkeypatch of the step module applies.
        return written(getattr(importlib.import_module(module), core)(*args, **kwargs))

    run.__name__ = core
    return run


scaffold = _as_the_cli_runs("scripts.scaffold", "scaffold")
setup = _as_the_cli_runs("scripts.setup", "setup")
migrate_code = _as_the_cli_runs("scripts.code", "migrate_code")
map_into_bundle = _as_the_cli_runs("scripts.resources", "map_into_bundle")
