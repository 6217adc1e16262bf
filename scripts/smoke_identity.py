"""`migrate smoke`'s probes of acting as the user and of concurrency, recorded for checks/identity.py.

Acting as the user: when the MLmodel marks resources on-behalf-of-user (or carries a user auth policy), smoke
sends each request with `x-forwarded-access-token`, as Databricks Apps does, and asks the workspace which
principal made each downstream call. Only the workspace stand-in can answer that (`GET /_standin/calls`), and
it takes tokens derived from its own as distinct principals (standin/identity.py): the app server gets one
as its service principal for this run, each simulated user another. Then:
- the main smoke requests carry user 0's token, and every call to an on-behalf-of-user resource must carry it;
- N users (default 8) send the same request at once, and each one's calls must carry only its own token.

Concurrency (`--concurrency N`, scripts/smoke_concurrency.py): N different inputs at once; each answer is
compared with the original model's answer to that same input. SmokeProbes runs both around smoke's requests.
"""

from __future__ import annotations

import argparse
import dataclasses
import secrets
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from scripts.core.layout import MigrationLayout
from scripts.model import mlmodel
from scripts import workspace
from scripts.smoke_concurrency import OriginalAnswers, ask_at_once, concurrency_record, varied_inputs

FORWARDED_TOKEN_HEADER = "x-forwarded-access-token"  # what agent_server/user_auth.py reads
DEFAULT_USERS = 8
# MLmodel resource type -> the stand-in's call kind for it.
CALL_KINDS = {"serving_endpoint": "llm", "sql_warehouse": "sql", "genie_space": "genie",
              "vector_search_index": "vector_search"}
# User-policy scopes (Serving's and Apps' names) -> the call kinds they let an agent make as the user.
SCOPE_KINDS = {"model-serving": "llm", "serving.serving-endpoints": "llm", "sql": "sql",
               "sql.statement-execution": "sql", "dashboards.genie": "genie", "genie": "genie",
               "vector-search": "vector_search", "vectorsearch.vector-search-indexes": "vector_search"}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--users", type=int, default=DEFAULT_USERS,
                        help="simulated users sent at once when the agent acts on behalf of users (default: "
                             "%(default)s; 0 skips the concurrent-users probe)")
    parser.add_argument("--concurrency", type=int, default=0,
                        help="also send N different inputs at once and compare each answer with the original's "
                             "answer to that input (default: off)")


# ---------------------------------------------------------------------------------------------------- what is on behalf of the user


def user_targets(mlmodel: dict) -> dict:
    """{call kind: [resource names] or "*"} the MLmodel says the agent uses as the user; empty when none."""
    targets: dict[str, list | str] = {}
    for resource_type, entries in ((mlmodel.get("resources") or {}).get("databricks") or {}).items():
        for entry in entries or []:
            if isinstance(entry, dict) and entry.get("on_behalf_of_user") and resource_type in CALL_KINDS:
                targets.setdefault(CALL_KINDS[resource_type], []).append(str(entry.get("name")))
    policy = mlmodel.get("auth_policy") or {}
    system = ((policy.get("system_auth_policy") or {}).get("resources") or {}).get("databricks") or {}
    # What the system policy lists, the agent reaches as the service (the endpoint's own identity).
    as_service: dict[str, list[str]] = {}
    for resource_type, entries in system.items():
        for entry in entries or []:
            if isinstance(entry, dict) and resource_type in CALL_KINDS:
                as_service.setdefault(CALL_KINDS[resource_type], []).append(str(entry.get("name")))
    for scope in ((policy.get("user_auth_policy") or {}).get("api_scopes") or []):
        kind = SCOPE_KINDS.get(scope)
        if kind and not isinstance(targets.get(kind), list):
            targets[kind] = {"except": as_service[kind]} if as_service.get(kind) else "*"
    return targets


def read_mlmodel(layout: MigrationLayout) -> dict:
    for path in (layout.original / mlmodel.MLMODEL, layout.source / mlmodel.MLMODEL):
        if path.is_file():
            try:
                return mlmodel.read_mlmodel(path)
            except mlmodel.UnreadableMLmodel:
                return {}  # analyze and code refuse it with the file and line (ANA020, COD021): no probe to plan
    return {}


# ---------------------------------------------------------------------------------------------------- the probe


@dataclasses.dataclass
class IdentityProbe:
    """One smoke run's principals on the stand-in, and what they did."""

    host: str
    token: str
    targets: dict
    users: int
    run_id: str = dataclasses.field(default_factory=lambda: secrets.token_hex(3))
    record: dict = dataclasses.field(default_factory=dict)

    @property
    def app_principal(self) -> str:
        return f"app-{self.run_id}"

    def user(self, index: int) -> str:
        return f"user-{index}-{self.run_id}"

    def token_of(self, principal: str) -> str:
        return f"{self.token}.{principal}"

    def server_env(self) -> dict[str, str]:
        """The app server runs as this run's service principal, so its own calls are told from the original's."""
        return {"DATABRICKS_TOKEN": self.token_of(self.app_principal)}

    def headers(self, index: int) -> dict[str, str]:
        return {FORWARDED_TOKEN_HEADER: self.token_of(self.user(index))}

    def cursor(self) -> int:
        return self._calls(0)["next"]

    def _calls(self, since: int) -> dict:
        response = httpx.get(f"{self.host}/_standin/calls", params={"since": since},
                             headers={"Authorization": f"Bearer {self.token}"}, timeout=10)
        response.raise_for_status()
        return response.json()

    def calls_since(self, since: int) -> list[dict]:
        """This run's calls (its app principal and users) from `since` on; other processes' are not ours."""
        ours = {self.app_principal} | {self.user(index) for index in range(self.users + 1)}
        return [call for call in self._calls(since)["calls"] if call["principal"] in ours]

    def concurrent_users(self, url: str, request: dict, timeout: float) -> None:
        """Users 1..N send the request at once; record their statuses and calls."""
        if self.users <= 0:
            return
        start = self.cursor()
        indexes = range(1, self.users + 1)
        with ThreadPoolExecutor(max_workers=self.users) as pool:
            statuses = list(pool.map(lambda index: _post(url, request, self.headers(index), timeout), indexes))
        self.record["concurrent"] = {"users": [self.user(index) for index in indexes], "statuses": statuses,
                                     "calls": self.calls_since(start)}


def _post(url: str, request: dict, headers: dict, timeout: float) -> int | str:
    try:
        return httpx.post(f"{url}/invocations", json=request, headers=headers, timeout=timeout).status_code
    except httpx.HTTPError as error:
        return f"{type(error).__name__}: {error}"


def standin_answers(host: str, token: str) -> bool:
    try:
        response = httpx.get(f"{host.rstrip('/')}/_standin/calls", params={"since": 1 << 62},
                             headers={"Authorization": f"Bearer {token}"}, timeout=5)
    except httpx.HTTPError:
        return False
    return response.status_code == 200 and "next" in response.json()


def plan(layout: MigrationLayout, env: dict[str, str], users: int) -> tuple[IdentityProbe | None, dict | None]:
    """The probe to run, and the record when it cannot run (None, None: the agent does not act as users)."""
    targets = user_targets(read_mlmodel(layout))
    if not targets:
        return None, None
    # The app's workspace as the SDK resolves it: DATABRICKS_HOST/TOKEN, else the profile .env names.
    host, token = (workspace.profile_setting(key, None, env) for key in ("host", "token"))
    if not host or not token or not standin_answers(host, token):
        return None, {"status": "skipped", "targets": targets,
                      "reason": "only the workspace stand-in tells which token made each downstream call, and "
                                f"the app's workspace ({host or 'none configured'}) is not one"}
    probe = IdentityProbe(host.rstrip("/"), token, targets, users)
    probe.record = {"status": "ran", "reason": None, "targets": targets, "app_principal": probe.app_principal}
    return probe, None

# ---------------------------------------------------------------------------------------------------- the hooks smoke calls


class SmokeProbes:
    """What `migrate smoke` runs around its main requests on a local server; `payload()` is what it records."""

    def __init__(self, layout: MigrationLayout, request: dict, args: argparse.Namespace, env: dict[str, str],
                 python: Path, compare: bool):
        self.identity, self._identity_record = plan(layout, env, max(getattr(args, "users", DEFAULT_USERS), 0))
        count = getattr(args, "concurrency", 0) or 0
        self.requests = varied_inputs(request, count) if count > 1 else []
        self._app_answers: list[dict] = []
        self._originals = OriginalAnswers(layout, self.requests, python, env) if self.requests and compare else None
        self._start = 0
        self._timeout = args.request_timeout

    def server_env(self, env: dict[str, str]) -> dict[str, str]:
        return {**env, **self.identity.server_env()} if self.identity else env

    def main_headers(self) -> dict[str, str] | None:
        """Headers of the main requests: user 0's forwarded token when the agent acts as users."""
        if self.identity is None:
            return None
        self._start = self.identity.cursor()
        return self.identity.headers(0)

    def after_main(self, url: str, request: dict) -> None:
        if self.identity is not None:
            # The main requests are two: invoke, then stream; each concurrent user sends invoke once.
            self.identity.record["solo"] = {"user": self.identity.user(0), "requests": 2,
                                            "calls": self.identity.calls_since(self._start)}
            self.identity.concurrent_users(url, request, self._timeout)
        if self.requests:
            headers = [self.identity.headers(self.identity.users + 1) if self.identity else {}] * len(self.requests)
            self._app_answers = ask_at_once(url, self.requests, self._timeout, headers)

    def payload(self) -> dict:
        """The `identity` and `concurrency` entries of the smoke payload (None when not run)."""
        identity = self.identity.record if self.identity else self._identity_record
        if self.identity and "solo" not in identity:  # the server never answered: nothing was probed
            identity = {**identity, "status": "skipped", "reason": "the app did not answer"}
        concurrency = None
        if self.requests and self._app_answers:
            original = (self._originals.answers(600.0) if self._originals
                        else "the original model was not run (parity off or no original_mlflow_model/)")
            concurrency = concurrency_record(self.requests, self._app_answers, original)
        return {"identity": identity, "concurrency": concurrency}

    def close(self) -> None:
        if self._originals:
            self._originals.close()
