"""The replay check: the replay report still describes the app, adds up, and kept the replay set private.

`migrate replay` records per request only its outcome and first difference (never a body), so this check does
not judge the answers again; it verifies what a report can be wrong about after the fact:
- the app's files (agent_server/, pyproject.toml, uv.lock) are the ones that were replayed (hashes now vs then);
- the totals agree with the per-request records, the set's size and the server's state, and a request that
  differed or failed is matched by an error the report carries (`migrate check` carries recorded errors);
- no replay set (logged requests, possibly personal data) lies inside the app folder, where git or
  `databricks bundle deploy` would pick it up.
Imports scripts/core and the smoke check's file hashes (checks never import a step module).
"""

from __future__ import annotations

import json

from checks.smoke import agent_file_hashes
from scripts.core.findings import Finding
from scripts.core.layout import MigrationLayout

STEP = "replay"
SET_FILE = "replay-set.jsonl"  # scripts/replay_set.py names the set so
AGENT_PACKAGE = "agent_server"
OUTCOMES = ("agreed", "differed", "failed", "uncompared")
FIX = "run `migrate replay` again; a report must not be edited by hand"


def changed_files(layout: MigrationLayout, recorded: dict[str, str]) -> list[Finding]:
    current = agent_file_hashes(layout.root)
    changed = sorted(path for path in set(recorded) | set(current) if recorded.get(path) != current.get(path))
    if not changed:
        return []
    return [Finding("RPL020", "error", f"{layout.root.name}/{AGENT_PACKAGE}",
                    "the app changed after the replay, so the replay no longer describes what ships: "
                    + ", ".join(changed[:8]) + (f" and {len(changed) - 8} more" if len(changed) > 8 else ""),
                    "run `migrate replay` again with the same --warehouse-id (and the steps after it)")]


def count_problems(payload: dict) -> list[str]:
    """How the report's numbers contradict each other (empty when they add up)."""
    records, totals = payload["requests"], payload["totals"]
    problems = []
    by_outcome = {outcome: sum(record["status"] == outcome for record in records) for outcome in OUTCOMES}
    if totals["replayed"] != len(records):
        problems.append(f"totals say {totals['replayed']} replayed, the report lists {len(records)} requests")
    for outcome in OUTCOMES:
        if totals[outcome] != by_outcome[outcome]:
            problems.append(f"totals say {totals[outcome]} {outcome}, the requests say {by_outcome[outcome]}")
    older = sum(record["format"] != "responses" for record in records)
    if totals["older_formats"] != older:
        problems.append(f"totals say {totals['older_formats']} in older formats, the requests say {older}")
    if payload["server"]["health"] == "ok" and len(records) != payload["set"]["requests"]:
        problems.append(f"the set holds {payload['set']['requests']} requests but {len(records)} were replayed")
    if len({record["id"] for record in records}) != len(records):
        problems.append("a request id appears twice")
    return problems


def unreported_failures(layout: MigrationLayout, report: dict) -> list[Finding]:
    """A request that differed or failed while the report carries no error: its findings were edited away."""
    bad = [record["id"] for record in report["payload"]["requests"] if record["status"] in ("differed", "failed")]
    errors = [finding for finding in report["findings"] if finding["severity"] == "error"]
    if bad and not errors:
        return [Finding("RPL021", "error", layout.relative(layout.report_path(STEP)),
                        f"{len(bad)} request(s) differed or failed ({', '.join(bad[:3])}) but the report carries no "
                        "error", FIX)]
    return []


def sets_inside_app(layout: MigrationLayout) -> list[Finding]:
    found = [path for path in layout.root.rglob(SET_FILE) if ".venv" not in path.parts]
    return [Finding("RPL018", "error", layout.relative(path),
                    "a replay set (logged requests, which can hold personal data) lies inside the app folder, where "
                    "git and `databricks bundle deploy` would carry it",
                    "delete it from the app folder; `migrate replay` keeps the set in <workdir>/.replay/, outside "
                    "the app") for path in found]


def set_not_ignored(layout: MigrationLayout, recorded: str) -> list[Finding]:
    """The set the report names, when it is here (a reviewer with only the app folder has none), must sit
    under a `.gitignore` that ignores everything."""
    path = layout.workdir / recorded
    ignore = path.parent.parent / ".gitignore"
    if not path.is_file():
        return []
    lines = ignore.read_text(encoding="utf-8").splitlines() if ignore.is_file() else []
    if "*" in (line.strip() for line in lines):
        return []
    return [Finding("RPL019", "warning", layout.relative(path),
                    "the replay set is not git-ignored: a repository rooted at the working directory would commit "
                    "the logged requests", "run `migrate replay` again (it writes .replay/.gitignore), or delete "
                    "the set when the review is done")]


def check_replay(layout: MigrationLayout) -> list[Finding]:
    report = json.loads(layout.report_path(STEP).read_text(encoding="utf-8"))
    payload = report["payload"]
    findings = [Finding("RPL021", "error", layout.relative(layout.report_path(STEP)),
                        f"the replay report does not add up: {problem}", FIX) for problem in count_problems(payload)]
    findings += unreported_failures(layout, report)
    findings += changed_files(layout, payload.get("agent_files") or {})
    findings += sets_inside_app(layout)
    findings += set_not_ignored(layout, payload["set"]["path"])
    return findings
