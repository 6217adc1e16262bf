"""`migrate check`: re-verify every step that left a report, from the files alone.

For each step with a report: validate the report against its schema, then run the step's own check,
which re-derives the facts from the files (hashes, MLmodel, code) instead of trusting the report.
Exit 0 only when no finding is an error, so a reviewer can trust a green run.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from checks.findings import Finding, has_errors
from checks.render import as_json, as_table
from checks.schema_registry import validation_errors
from scripts.errors import MigrateError
from scripts.layout import MigrationLayout, app_folders
from scripts.steps import STEPS, Command

EXIT_FAILED = 1


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("steps", nargs="*", metavar="STEP",
                        help=f"steps to check (default: every step that left a report): "
                             f"{', '.join(step.name for step in STEPS)}")
    parser.add_argument("--app", type=Path, help="the app folder to check (default: found from --workdir)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON instead of a table")


def report_findings(layout: MigrationLayout, step: Command) -> list[Finding] | None:
    """Schema findings for the step's report, or None when the step left no report."""
    path = layout.report_path(step.name)
    if not path.exists():
        return None
    shown = layout.relative(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        return [Finding("CHK002", "error", shown, f"the report is not valid JSON: {error}",
                        f"re-run `migrate {step.name}` to write it again")]
    return [
        Finding("CHK003", "error", shown, f"the report breaks its schema at {line}",
                f"re-run `migrate {step.name}`; a report must not be edited by hand")
        for line in validation_errors(document, step.name)
    ]


def check_steps(layout: MigrationLayout, names: list[str]) -> tuple[list[str], list[Finding]]:
    """Run the checks of the named steps (all with reports when none are named): steps checked, findings."""
    wanted = [step for step in STEPS if not names or step.name in names]
    checked: list[str] = []
    findings: list[Finding] = []
    for step in wanted:
        schema_findings = report_findings(layout, step)
        if schema_findings is None:
            if names:  # asked for by name: its absence is the answer
                findings.append(Finding("CHK004", "error", layout.relative(layout.report_path(step.name)),
                                        f"the {step.name} step has no report",
                                        f"run `migrate {step.name}` first"))
            continue
        checked.append(step.name)
        findings.extend(schema_findings)
        if not schema_findings:  # the step's check reads the report; a broken one is already the finding
            findings.extend(step.load_check()(layout))
    if not checked and not names:
        raise MigrateError(
            f"no step reports under {layout.reports}: nothing to check",
            "run `migrate check` in the working directory after `migrate download`, or pass --app APP_DIR",
            code="CHK001",
        )
    return checked, findings


def layout_to_check(workdir: Path, app: Path | None) -> MigrationLayout:
    """`--app`, else the folder itself when it is an app, else the one app in it (the reports moved there
    when `migrate scaffold` made it), else the working directory with the download's reports."""
    if app is not None:
        return MigrationLayout.for_app(app)
    layout = MigrationLayout.discover(workdir)
    if layout.is_app:
        return layout
    apps = app_folders(workdir)
    if len(apps) > 1:
        raise MigrateError(f"several app folders in {workdir}: {', '.join(path.name for path in apps)}",
                           "say which one to check with --app DIR")
    return MigrationLayout.for_app(apps[0]) if apps else layout


def run(args: argparse.Namespace) -> int:
    unknown = sorted(set(args.steps) - {step.name for step in STEPS})
    if unknown:
        raise MigrateError(f"unknown step(s): {', '.join(unknown)}",
                           f"name steps from: {', '.join(step.name for step in STEPS)}")
    layout = layout_to_check(args.workdir, args.app)
    checked, findings = check_steps(layout, args.steps)
    if args.json:
        print(as_json(findings, checked=checked, root=str(layout.root)))
    else:
        print(f"checked {', '.join(checked) or 'nothing'} in {layout.root}")
        print(as_table(findings))
        print("verdict: " + ("FAIL" if has_errors(findings) else "PASS"))
    return EXIT_FAILED if has_errors(findings) else 0
