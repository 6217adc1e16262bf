"""A finding is what every check returns: a stable code, how bad it is, where, what, and the fix.

Checks never print; `migrate check` and the step CLIs render findings in one place.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

Severity = Literal["error", "warning", "info"]
SEVERITIES: tuple[Severity, ...] = ("error", "warning", "info")


@dataclass(frozen=True)
class Finding:
    code: str
    severity: Severity
    path: str
    message: str
    fix: str

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Finding:
        return cls(**{key: data[key] for key in ("code", "severity", "path", "message", "fix")})


def has_errors(findings: list[Finding]) -> bool:
    return any(finding.severity == "error" for finding in findings)


def status_of(findings: list[Finding]) -> str:
    """The status a report or a check run takes from its findings."""
    if has_errors(findings):
        return "error"
    if any(finding.severity == "warning" for finding in findings):
        return "warning"
    return "ok"
