"""Who called: the stand-in's principals, and the record of which one made each downstream call.

A real workspace tells users apart by their tokens. The stand-in does the same with tokens derived from its
own: `<workspace token>` is the developer (and the app's default identity), `<workspace token>.<principal>`
is another principal named `<principal>` (a user whose token Apps forwards, or the app's service principal
in a smoke run). Whoever knows the workspace token can mint them, which is what `migrate smoke` does to send
distinct users at once; nobody else can.

Every downstream call an agent makes (LLM chat completions, SQL statements, Genie, vector search, current
user) is recorded with its kind, the resource it named and the principal whose token made it, in order, so a
test or the smoke step can ask "did this user's request reach the warehouse as this user?". Tokens
themselves are never recorded.
"""

from __future__ import annotations

import re
import threading
from dataclasses import asdict, dataclass, field

WORKSPACE_PRINCIPAL = "workspace"
PRINCIPAL_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
# How many calls are kept: enough for a smoke run's probes many times over, bounded for a long benchmark.
MAX_CALLS = 20_000


def principal_of(authorization: bytes | str, workspace_token: str) -> str | None:
    """The principal an `Authorization` header value names, or None when the token is not one of ours."""
    value = authorization.decode() if isinstance(authorization, bytes) else authorization
    if not value.startswith("Bearer "):
        return None
    token = value[len("Bearer "):]
    if token == workspace_token:
        return WORKSPACE_PRINCIPAL
    prefix = workspace_token + "."
    if token.startswith(prefix) and PRINCIPAL_PATTERN.fullmatch(token[len(prefix):]):
        return token[len(prefix):]
    return None


@dataclass(frozen=True)
class Call:
    seq: int
    kind: str  # llm, sql, genie, vector_search, current_user
    resource: str | None  # the endpoint, warehouse, Genie space or index the call named
    principal: str


@dataclass
class CallRecord:
    """The calls made so far, numbered; read from a sequence number on (`since`) to see one window."""

    calls: list[Call] = field(default_factory=list)
    next_seq: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, kind: str, resource: str | None, principal: str) -> None:
        with self.lock:
            self.calls.append(Call(self.next_seq, kind, resource, principal))
            self.next_seq += 1
            if len(self.calls) > MAX_CALLS:
                del self.calls[: len(self.calls) - MAX_CALLS]

    def since(self, seq: int) -> dict:
        with self.lock:
            return {"calls": [asdict(call) for call in self.calls if call.seq >= seq], "next": self.next_seq}
