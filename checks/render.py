"""Findings as people and programs read them: a text table, or JSON in check-jsonschema's shape."""

from __future__ import annotations

import json

from checks.findings import Finding, has_errors

ORDER = {"error": 0, "warning": 1, "info": 2}


def sorted_findings(findings: list[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda finding: (ORDER[finding.severity], finding.code, finding.path))


def as_table(findings: list[Finding]) -> str:
    """One block per finding: `SEVERITY CODE path: message` and an indented fix line."""
    if not findings:
        return "no findings"
    lines = []
    for finding in sorted_findings(findings):
        lines.append(f"{finding.severity.upper():<7} {finding.code}  {finding.path}: {finding.message}")
        if finding.fix:
            lines.append(f"{'':<7} {'':<6}  fix: {finding.fix}")
    counts = {severity: sum(1 for f in findings if f.severity == severity) for severity in ORDER}
    lines.append(", ".join(f"{count} {severity}{'s' if count != 1 else ''}" for severity, count in counts.items()))
    return "\n".join(lines)


def as_json(findings: list[Finding], **extra) -> str:
    document = {
        "status": "fail" if has_errors(findings) else "ok",
        **extra,
        "findings": [finding.to_dict() for finding in sorted_findings(findings)],
    }
    return json.dumps(document, indent=2)
