"""Acting as the user, and answering each of many at once: findings from what `migrate smoke` recorded.

`migrate smoke` (scripts/smoke_identity.py) records, against the workspace stand-in, which principal made each
downstream call while the app answered requests that carried users' forwarded tokens, and the answers to
several different inputs sent at once. These functions turn that record into findings, when the step runs and
again in `migrate check`, so a report cannot claim more than its record shows.

Why it matters (ARCHITECTURE §8): outside Model Serving, `ModelServingUserCredentials` falls back to the
default credentials, which in an App are the app's own service principal; and an agent that keeps
per-request state on a shared instance hands one user's client to another under concurrency.
"""

from __future__ import annotations

from collections import Counter

from scripts.core.findings import Finding
from scripts import responses_stream as rs

CONVERT_FIX = ("build the user's client per request from the forwarded token (`from agent_server.user_auth import "
               "user_workspace_client`; `migrate code` rewrites ModelServingUserCredentials into it), inside the "
               "handler, never at module level or on the agent instance; see skills/migrate-code/SKILL.md")
SHARED_STATE_FIX = ("the request path keeps a user's client (or what is built from it) on a shared object: build "
                    "the agent per request, or keep per-request values in locals; see skills/migrate-code/SKILL.md")


def _is_target(call: dict, targets: dict) -> bool:
    """Whether the MLmodel says this call's resource is used on behalf of the user."""
    names = targets.get(call["kind"])
    if isinstance(names, dict):  # a user scope covers the kind, but for what the system policy lists
        return call["resource"] not in names["except"]
    return names is not None and (names == "*" or call["resource"] in names)


def _calls_as_others(calls: list[dict], user: str, targets: dict) -> list[dict]:
    return [call for call in calls if _is_target(call, targets) and call["principal"] != user]


def _described(call: dict, app_principal: str) -> str:
    who = "the app's service principal" if call["principal"] == app_principal else f"{call['principal']}'s token"
    return f"{call['kind']} {call['resource'] or ''} as {who}".replace("  ", " ")


def _solo_findings(identity: dict, where: str) -> list[Finding]:
    solo = identity.get("solo")
    if not solo:
        return []
    wrong = _calls_as_others(solo["calls"], solo["user"], identity["targets"])
    if not wrong:
        return []
    shown = sorted({_described(call, identity["app_principal"]) for call in wrong})
    return [Finding("SMK030", "error", where,
                    f"a request carrying a user's forwarded token ({solo['user']}) reached resources the MLmodel "
                    f"marks on-behalf-of-user with another identity: {', '.join(shown)} ({len(wrong)} call(s))",
                    CONVERT_FIX)]


def _concurrent_findings(identity: dict, where: str) -> list[Finding]:
    concurrent, solo = identity.get("concurrent"), identity.get("solo")
    if not concurrent:
        return []
    users = concurrent["users"]
    failed = [f"{user}: {status}" for user, status in zip(users, concurrent["statuses"]) if status != 200]
    if failed:
        return [Finding("SMK033", "error", where,
                        f"{len(failed)} of {len(users)} concurrent users' requests failed: {', '.join(failed[:4])}",
                        "read the server log: the agent fails when several users call it at once")]
    # The solo record covers `requests` requests (invoke and stream), each concurrent user one invoke: a user's
    # calls times that number must equal the solo user's.
    per_solo = solo.get("requests", 1)
    expected = Counter((call["kind"], call["resource"]) for call in solo["calls"]
                       if call["principal"] == solo["user"] and _is_target(call, identity["targets"]))
    made = {user: Counter((call["kind"], call["resource"]) for call in concurrent["calls"]
                          if call["principal"] == user and _is_target(call, identity["targets"])) for user in users}
    mixed = [user for user in users
             if Counter({key: count * per_solo for key, count in made[user].items()}) != expected]
    as_app = [call for call in concurrent["calls"]
              if _is_target(call, identity["targets"]) and call["principal"] not in users]
    findings = []
    if mixed:
        counts = "; ".join(f"{user}'s token made {sum(made[user].values())}" for user in mixed[:4])
        findings.append(Finding(
            "SMK031", "error", where,
            f"{len(users)} users at once: the calls of {len(mixed)} of them did not carry their own token "
            f"(one request alone makes {sum(expected.values()) / per_solo:g} on-behalf-of-user call(s); {counts}): users' "
            "requests ran with each other's credentials", SHARED_STATE_FIX))
    if as_app and not _solo_findings(identity, where):
        shown = sorted({_described(call, identity["app_principal"]) for call in as_app})
        findings.append(Finding("SMK030", "error", where,
                                f"{len(users)} users at once: on-behalf-of-user resources were called with another "
                                f"identity: {', '.join(shown)}", CONVERT_FIX))
    return findings


def identity_findings(payload: dict, where: str) -> list[Finding]:
    identity = payload.get("identity")
    if not identity:
        return []
    if identity["status"] == "skipped":
        return [Finding("SMK034", "unverified", where,
                        f"the agent acts on behalf of users, but smoke could not prove it does so as each user: "
                        f"{identity['reason']}",
                        "run `migrate smoke` against the workspace stand-in (`migrate demo` shows how), or test "
                        "the deployed app as two different users")]
    return _solo_findings(identity, where) + _concurrent_findings(identity, where)


def concurrency_findings(payload: dict, where: str) -> list[Finding]:
    """`--concurrency N`: each of N different inputs sent at once, compared with the original's answer to it."""
    record = payload.get("concurrency")
    if not record:
        return []
    if record.get("error"):
        return [Finding("SMK036", "error", where, f"the concurrency probe could not compare: {record['error']}",
                        "the original model must answer the probe's inputs: see SMK015's fix")]
    findings = []
    mode = payload["comparison"]
    for index, (app, original) in enumerate(zip(record["app"], record["original"])):
        if app.get("status_code") != 200:
            findings.append(Finding("SMK036", "error", f"{where} input {index}",
                                    f"request {index} of {len(record['app'])} sent at once got "
                                    f"{app.get('status_code')}: {rs.shown(app.get('error') or app.get('body'))}",
                                    "read the server log: the agent fails under concurrent requests"))
            continue
        body = app.get("body") or {}
        difference = rs.first_difference(
            rs.answer_view(original.get("output") or [], original.get("custom_outputs"), mode),
            rs.answer_view(body.get("output") or [], body.get("custom_outputs"), mode))
        if difference:
            findings.append(Finding("SMK035", "error", f"{where} input {index}",
                                    f"{len(record['app'])} different inputs at once: the answer to input {index} "
                                    f"differs from the original's answer to that input at {difference['path']}: "
                                    f"the original has {difference['expected']}, the app has {difference['actual']}",
                                    SHARED_STATE_FIX))
    return findings
