"""The code check's rule for acting as the user: no Model Serving user credentials are left in the app.

Outside Model Serving, `ModelServingUserCredentials` (and VectorSearchClient's MODEL_SERVING_USER_CREDENTIALS)
fall back to the default credentials, which in an App are the app's service principal (ARCHITECTURE §8): an
app that keeps one runs every user as the app. `migrate code` rewrites the safe uses into
`user_workspace_client()` (scripts/transform/user_credentials.py) and marks the rest; this check errors on any
use still in agent_server/, read from the code (comments and strings do not count).
"""

from __future__ import annotations

import ast
from pathlib import Path

from scripts.core.findings import Finding

USER_CREDENTIAL_NAMES = frozenset({"ModelServingUserCredentials", "MODEL_SERVING_USER_CREDENTIALS"})
PACKAGE = "agent_server"


def _uses(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in USER_CREDENTIAL_NAMES:
            found.append((node.lineno, node.id))
        elif isinstance(node, ast.Attribute) and node.attr in USER_CREDENTIAL_NAMES:
            found.append((node.lineno, node.attr))
        elif isinstance(node, ast.ImportFrom):
            found += [(node.lineno, alias.name) for alias in node.names if alias.name in USER_CREDENTIAL_NAMES]
    return sorted(set(found))


def user_credential_findings(app: Path) -> list[Finding]:
    findings = []
    for path in sorted((app / PACKAGE).rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError):
            continue  # the import probe reports a file that does not parse
        for line, name in _uses(tree):
            findings.append(Finding(
                "COD032", "error", f"{app.name}/{path.relative_to(app).as_posix()}:{line}",
                f"`{name}` is still used: outside Model Serving it acts as the app's service principal, so every "
                "user would run as the app",
                "build the user's client per request inside the handler with `from agent_server.user_auth import "
                "user_workspace_client` (`migrate code` does it where it is safe), keep it in a local variable"))
    return findings
