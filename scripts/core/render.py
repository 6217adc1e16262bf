"""Findings as people and programs read them: one line per finding for a step, a table and a verdict for
`migrate check`, or JSON in check-jsonschema's shape. The only place findings are printed from."""

from __future__ import annotations

import json

from scripts.core.findings import SEVERITIES, Finding, verdict_of

ORDER = {severity: rank for rank, severity in enumerate(SEVERITIES)}


def sorted_findings(findings: list[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda finding: (ORDER[finding.severity], finding.code, finding.path))


def as_lines(findings: list[Finding]) -> str:
    """What a step prints after its summary: `severity: [CODE] path: message` and the fix below it."""
    return "\n".join(f"{finding.severity}: [{finding.code}] {finding.path}: {finding.message}\n  fix: {finding.fix}"
                     for finding in sorted_findings(findings))


def counts(findings: list[Finding]) -> str:
    tally = {severity: sum(1 for f in findings if f.severity == severity) for severity in SEVERITIES}
    return ", ".join(f"{count} {severity}{'s' if count != 1 and severity != 'unverified' else ''}"
                     for severity, count in tally.items())


def as_table(findings: list[Finding]) -> str:
    """One block per finding: `SEVERITY CODE path: message` and an indented fix line."""
    if not findings:
        return "no findings"
    lines = []
    for finding in sorted_findings(findings):
        lines.append(f"{finding.severity.upper():<10} {finding.code}  {finding.path}: {finding.message}")
        if finding.fix:
            lines.append(f"{'':<10} {'':<6}  fix: {finding.fix}")
    lines.append(counts(findings))
    return "\n".join(lines)


def verdict_line(findings: list[Finding]) -> str:
    """`verdict: PASS|FAIL|UNVERIFIED`, with what completes an UNVERIFIED one."""
    verdict = verdict_of(findings)
    line = f"verdict: {verdict}"
    if verdict == "UNVERIFIED":
        missing = [f.code for f in sorted_findings(findings) if f.severity == "unverified"]
        line += (f" (nothing wrong found, but {', '.join(dict.fromkeys(missing))} could not run here: "
                 "do what their fix says, then check again)")
    return line


def as_json(findings: list[Finding], **extra) -> str:
    verdict = verdict_of(findings)
    document = {
        "status": {"PASS": "ok", "FAIL": "fail", "UNVERIFIED": "unverified"}[verdict],
        "verdict": verdict,
        **extra,
        "findings": [finding.to_dict() for finding in sorted_findings(findings)],
    }
    return json.dumps(document, indent=2)
