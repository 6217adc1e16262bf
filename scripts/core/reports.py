"""Step reports: the common envelope, validation against the step's schema, and the atomic write.

Every step writes `migration/reports/<step>.json`. A report that does not match its schema is a bug in
the step, so it raises instead of being written.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path

from scripts.core.findings import Finding, status_of
from scripts.core.schema_registry import validation_errors
from scripts.core import atomic
from scripts.core.errors import MigrateError
from scripts.core.layout import MIGRATION_DIR, MigrationLayout, app_folders

TOOL_NAME = "agent-migrate"


def tool_version() -> str:
    return version(TOOL_NAME)


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class InvalidReport(Exception):
    """A report that breaks its schema: a bug in the step that built it."""


@dataclass
class StepReport:
    """A report being built while a step runs; `to_dict` gives the envelope the schema checks."""

    step: str
    inputs: dict
    started_at: str = field(default_factory=now)
    outputs: dict[str, str] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    payload: dict = field(default_factory=dict)
    finished_at: str | None = None
    # Where the report belongs (the working directory's or the app's migration/): the step says, the CLI writes.
    layout: MigrationLayout | None = field(default=None, repr=False, compare=False)

    @property
    def status(self) -> str:
        return status_of(self.findings)

    def to_dict(self) -> dict:
        return {
            "schema_version": 1,
            "step": self.step,
            "status": self.status,
            "tool": {"name": TOOL_NAME, "version": tool_version()},
            "started_at": self.started_at,
            "finished_at": self.finished_at or now(),
            "inputs": self.inputs,
            "outputs": self.outputs,
            "findings": [finding.to_dict() for finding in self.findings],
            "payload": self.payload,
        }


def write_report(layout: MigrationLayout, report: StepReport) -> Path:
    """Validate `report` against `checks/schemas/<step>.schema.json`, then write it atomically."""
    report.finished_at = report.finished_at or now()
    document = report.to_dict()
    errors = validation_errors(document, report.step)
    if errors:
        raise InvalidReport(f"the {report.step} report breaks its schema:\n  " + "\n  ".join(errors))
    path = layout.report_path(report.step)
    atomic.write_text(path, json.dumps(document, indent=2, sort_keys=False) + "\n")
    if not layout.is_app:  # a step of the working directory re-run after scaffold: its apps get the new facts
        for app_dir in app_folders(layout.workdir):
            carry_migration(layout, app_dir)
    return path


def write_step_report(report: StepReport) -> Path:
    """Write a step's report where the step said it belongs: what the CLI does once the step returns."""
    if report.layout is None:
        raise InvalidReport(f"the {report.step} step returned a report without its layout")
    return write_report(report.layout, report)


def carry_migration(workdir_layout: MigrationLayout, app_dir: Path) -> list[str]:
    """Copy the working directory's `migration/` (download and analyze reports, source facts) into the app.

    Those reports have one home until an app exists, then the app's copy is the one its checks read; a
    re-run of download or analyze (or `scaffold --force`) refreshes it, so it is never stale. The app's own
    reports (scaffold and after) are never in the working directory's folder, so nothing of the app's is lost.
    """
    carried = []
    for path in sorted(workdir_layout.migration.rglob("*")):
        if path.is_file():
            relative = path.relative_to(workdir_layout.migration)
            target = app_dir / MIGRATION_DIR / relative
            if not target.is_file() or target.read_bytes() != path.read_bytes():
                atomic.write_bytes(target, path.read_bytes())
            carried.append(f"{MIGRATION_DIR}/{relative.as_posix()}")
    return carried


def read_report(layout: MigrationLayout, step: str) -> dict | None:
    """The report a step left, or None when it has not run. A report that is not JSON or breaks its schema is
    never used: a step that trusted one could be steered by a hand edit (a path out of the app, a claim)."""
    path = layout.report_path(step)
    if not path.exists():
        return None
    fix = f"run `migrate {step}` again to write it anew; reports are never edited by hand"
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise MigrateError(f"{layout.relative(path)} is not valid JSON: {error}", fix, code="CHK002") from None
    errors = validation_errors(document, step)
    if errors:
        raise MigrateError(f"{layout.relative(path)} breaks its schema: {errors[0]}", fix, code="CHK003")
    return document
