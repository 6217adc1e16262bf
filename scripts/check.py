"""`migrate check`: re-verify every step from the files alone, and give one verdict a reviewer can trust.

For each step: validate its report against its schema, carry every error the step recorded (a report whose
status is `error` can never give PASS), then run the step's own check, which re-derives the facts from the
files (hashes, MLmodel, code) instead of trusting the report. A step whose report is missing while a later
step's report exists is an error: the pipeline lost a step. In an app folder, a step that never ran is
UNVERIFIED: nothing checked it.

Verdicts (`scripts.core.findings`): PASS exit 0, FAIL exit 1, UNVERIFIED exit 4.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from scripts.core.findings import EXIT_CODE_OF_VERDICT, Finding, status_of, verdict_of
from scripts.core.render import as_json, as_table, verdict_line
from scripts.core.schema_registry import validation_errors
from scripts.core.errors import MigrateError
from scripts.core.layout import MigrationLayout, app_folders
from scripts.steps import STEPS, Command

PROFILE_KEY = "DATABRICKS_CONFIG_PROFILE"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("steps", nargs="*", metavar="STEP",
                        help=f"steps to check (default: all of them): {', '.join(step.name for step in STEPS)}")
    parser.add_argument("--app", type=Path, help="the app folder to check (default: found from --workdir)")
    parser.add_argument("--profile", help="a Databricks CLI profile for the checks that need a workspace (the "
                                          "code check imports the agent, which may reach it at import)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON instead of a table")


def report_document(layout: MigrationLayout, step: Command) -> tuple[dict | None, list[Finding]]:
    """The step's report when it is valid JSON that keeps its schema, else the findings saying why not."""
    path = layout.report_path(step.name)
    shown = layout.relative(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        return None, [Finding("CHK002", "error", shown, f"the report is not valid JSON: {error}",
                              f"re-run `migrate {step.name}` to write it again")]
    problems = validation_errors(document, step.name)
    if problems:
        return None, [Finding("CHK003", "error", shown, f"the report breaks its schema at {line}",
                              f"re-run `migrate {step.name}`; a report must not be edited by hand")
                      for line in problems]
    return document, []


def recorded_findings(layout: MigrationLayout, step: Command, document: dict) -> list[Finding]:
    """The errors (and unverified checks) the step recorded when it ran, carried into the verdict; a status
    that its own findings contradict means the report was edited."""
    recorded = [Finding.from_dict(entry) for entry in document["findings"]]
    carried = [finding for finding in recorded if finding.severity in ("error", "unverified")]
    if document["status"] != status_of(recorded):
        carried.append(Finding("CHK005", "error", layout.relative(layout.report_path(step.name)),
                               f"the report says `{document['status']}` but its findings make it "
                               f"`{status_of(recorded)}`: it was edited after the step ran",
                               f"re-run `migrate {step.name}`; a report must not be edited by hand"))
    return carried


def missing_step(layout: MigrationLayout, step: Command, later: list[str]) -> Finding:
    return Finding("CHK004", "error", layout.relative(layout.report_path(step.name)),
                   f"the {step.name} step has no report" + (f", but later steps ran ({', '.join(later)}): the "
                                                            "migration lost a step" if later else ""),
                   f"run `migrate {step.name}` (and the steps after it) again")


def not_run(layout: MigrationLayout, step: Command) -> Finding:
    return Finding("CHK007", "unverified", layout.relative(layout.report_path(step.name)),
                   f"the {step.name} step has not run, so nothing verified what it checks",
                   f"run `migrate {step.name}`, then `migrate check` again")


def optional_not_run(layout: MigrationLayout, step: Command) -> Finding:
    # Info, not unverified: an optional step may be impossible for this endpoint (replay needs inference
    # tables), so its absence must not hold back a verdict the other steps earned; the reviewer still sees it.
    return Finding("CHK010", "info", layout.relative(layout.report_path(step.name)),
                   f"the optional {step.name} step has not run: {step.summary[0].lower()}{step.summary[1:]}",
                   f"run `migrate {step.name}` when the endpoint allows it (see its skill), then `migrate check` again")


def check_steps(layout: MigrationLayout, names: list[str]) -> tuple[list[str], list[Finding]]:
    """Run the checks of the named steps (all when none are named): the steps checked, and the findings."""
    present = [step.name for step in STEPS if layout.report_path(step.name).exists()]
    if not present and not names:
        raise MigrateError(
            f"no step reports under {layout.reports}: nothing to check",
            "run `migrate check` in the working directory after `migrate download`, or pass --app APP_DIR",
            code="CHK001",
        )
    checked: list[str] = []
    findings: list[Finding] = []
    for index, step in enumerate(STEPS):
        if names and step.name not in names:
            continue
        if step.name not in present:
            later = [other.name for other in STEPS[index + 1:] if other.name in present]
            if step.optional and not names:
                if layout.is_app or later:
                    findings.append(optional_not_run(layout, step))
            elif names or later:
                findings.append(missing_step(layout, step, later))
            elif layout.is_app:
                findings.append(not_run(layout, step))
            continue
        checked.append(step.name)
        document, problems = report_document(layout, step)
        findings.extend(problems)
        if document is not None:  # the step's check reads the report; a broken one is already the finding
            rederived = step.rederived_codes()
            findings.extend(step.load_check()(layout))
            findings.extend(finding for finding in recorded_findings(layout, step, document)
                            if finding.code not in rederived)
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
    if args.profile:  # the checks' subprocesses (the code check's import) inherit it
        os.environ[PROFILE_KEY] = args.profile
    layout = layout_to_check(args.workdir, args.app)
    checked, findings = check_steps(layout, args.steps)
    if args.json:
        print(as_json(findings, checked=checked, root=str(layout.root)))
    else:
        print(f"checked {', '.join(checked) or 'nothing'} in {layout.root}")
        print(as_table(findings))
        print(verdict_line(findings))
    return EXIT_CODE_OF_VERDICT[verdict_of(findings)]
