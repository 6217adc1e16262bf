"""User API scopes: Model Serving's auth-policy names turned into the names Databricks Apps accepts.

An MLflow `UserAuthPolicy(api_scopes=[...])` may use Model Serving's names (`model-serving`, `vector-search`,
`unity-catalog`), which Apps rejects in `user_api_scopes` (dao-ai #276). The table of both vocabularies, with
where each name was seen, is the data file next to this module (user_api_scopes.json); an unknown name is an
error that lists the valid ones, since a scope Apps rejects fails the deploy and a silently dropped one leaves
the user's calls unauthorized.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from scripts.core.findings import Finding

SCOPES_FILE = Path(__file__).with_name("user_api_scopes.json")


@cache
def scope_table() -> dict:
    return json.loads(SCOPES_FILE.read_text(encoding="utf-8"))


def valid_names() -> list[str]:
    table = scope_table()
    return sorted(table["apps"]) + sorted(table["serving"])


def to_apps_scopes(names: list[str], where: str) -> tuple[list[str], list[Finding]]:
    """The Apps scopes for `names` (in order, once each), and a finding per name mapped or unknown."""
    table = scope_table()
    scopes: list[str] = []
    findings: list[Finding] = []
    for name in names:
        if name in table["apps"]:
            mapped = [name]
        elif name in table["serving"]:
            mapped = table["serving"][name]["apps"]
            findings.append(Finding("RES031", "info", where,
                                    f"user scope {name!r} is Model Serving's name; Apps calls it "
                                    f"{', '.join(mapped)} ({table['serving'][name]['source']})", "nothing to do"))
        else:
            why = table["not_scopes"].get(name)
            findings.append(Finding(
                "RES030", "error", where,
                f"user scope {name!r} is not a scope Databricks Apps accepts{f': {why}' if why else ''}; valid "
                f"names: {', '.join(valid_names())}",
                "use one of the valid names in databricks.yml `user_api_scopes` (Model Serving names are mapped "
                "for you); a name missing from scripts/user_api_scopes.json can be added there with where it "
                "comes from"))
            continue
        scopes += [scope for scope in mapped if scope not in scopes]
    return scopes, findings
