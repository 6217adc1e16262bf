"""A finding is what every check returns: a stable code, how bad it is, where, what, and the fix.

Checks never print; the CLI renders findings in one place (`scripts.core.render`).

Severities, worst first:
- `error`: something is wrong; the verdict is FAIL.
- `unverified`: a check could not run here (the agent needs a workspace at import, say); nothing wrong was
  found, but nothing was proven either. Its `fix` is the command that completes the verification.
- `warning`, `info`: worth reading; they never change the verdict.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

Severity = Literal["error", "unverified", "warning", "info"]
SEVERITIES: tuple[Severity, ...] = ("error", "unverified", "warning", "info")

# The three verdicts of `migrate check`, and the exit code of each (2 is argparse's usage error, 3 a bug).
PASS, FAIL, UNVERIFIED = "PASS", "FAIL", "UNVERIFIED"
EXIT_CODE_OF_VERDICT = {PASS: 0, FAIL: 1, UNVERIFIED: 4}


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
    """The status a report takes from its findings: the worst severity among them, or `ok`."""
    for severity in ("error", "unverified", "warning"):
        if any(finding.severity == severity for finding in findings):
            return severity
    return "ok"


def verdict_of(findings: list[Finding]) -> str:
    """FAIL on any error; else UNVERIFIED when a check could not run; else PASS."""
    if has_errors(findings):
        return FAIL
    if any(finding.severity == "unverified" for finding in findings):
        return UNVERIFIED
    return PASS
