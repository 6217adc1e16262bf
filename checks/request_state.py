"""The code check's request-state part: from the app's files alone, no state a request writes is shared.

Re-derived from `agent_server/` (never from the code report): the request path starts at the `@invoke`/`@stream`
handlers and is followed as analyze follows the original (`scripts.model.request_state`). A write to the agent's
`self.*` through a module-level instance (one instance for every request) is COD050; a write to a module
global, a class attribute or another module-level object is COD051. Writes to an agent the handler builds for
its own request are fine. The code report's claim that the handlers build the agent per request is checked
against the handlers (COD052).
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

from checks.code_claims import handlers_in
from scripts.core.findings import Finding
from scripts.core.layout import MigrationLayout
from scripts.model.parsed_modules import ParsedModule
from scripts.model.program import Program
from scripts.model.request_state import REQUEST_METHODS, state_writes
from scripts.model.request_state_writes import Frame

ENTRY_MODULE = "agent_server.agent"
# The scaffold's own modules (agent_server/ of this repository, copied into every app): their module state
# (sync_bridge's lazily built pool, under a lock) is the server's, not the agent's.
SCAFFOLD_MODULES = {f"agent_server/{path.name}" for path in (Path(__file__).resolve().parent.parent / "agent_server").glob(
    "*.py") if path.name not in ("agent.py", "__init__.py")}
PER_REQUEST = "per_request"
WAYS_OUT = ("either keep per-request values in local variables (pass them as arguments) instead of on `self`, or "
            "make building the agent cheap (no network, file or model loads in __init__/load_context) and build one "
            "per request in each handler (`migrate code --force` does it when analyze finds construction cheap)")


def request_state_findings(layout: MigrationLayout, modules: dict[str, ParsedModule]) -> list[Finding]:
    entry = modules.get(ENTRY_MODULE)
    if entry is None:
        return []
    program = Program(modules)
    handlers = handlers_in(entry.tree)
    writes = state_writes(program, [Frame(ENTRY_MODULE, handler, handler.name) for handler in handlers])
    app = layout.root.name
    findings = []
    # Writes under a lock are shared on purpose (the code step warns with COD053); the rest must be private.
    for write in [write for write in writes if write.path not in SCAFFOLD_MODULES and not write.guarded]:
        where = f"{app}/{write.path}:{write.line}"
        if write.instance and _is_agent(program, entry, write.instance):
            findings.append(Finding(
                "COD050", "error", where,
                f"the request path ({write.root}) writes self.{write.attribute.split('.', 1)[1]} (in {write.function}) "
                f"on {write.instance}, one instance shared by every request: concurrent users see each other's values",
                WAYS_OUT))
        elif write.kind != "instance":
            findings.append(Finding(
                "COD051", "error", where,
                f"the request path ({write.root}) writes {'the class attribute' if write.kind == 'class' else 'the module-level'} "
                f"{write.attribute} (in {write.function}): every concurrent request shares it",
                "keep per-request values in local variables (return them, pass them as arguments); a cache shared on "
                "purpose needs a lock and must hold nothing user-specific"))
    findings += _claim_findings(layout, entry, handlers)
    return findings


def _is_agent(program: Program, module: ParsedModule, instance: str) -> bool:
    klass = program.instance_class(module, instance)
    return klass is not None and any(program.method(program.mro(klass), name) for name in REQUEST_METHODS)


def _claim_findings(layout: MigrationLayout, entry: ParsedModule, handlers: list) -> list[Finding]:
    """code.json says the handlers build the agent per request: at least one handler must build one."""
    try:
        payload = json.loads(layout.report_path("code").read_text(encoding="utf-8"))["payload"]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    claim = (payload.get("request_state") or {}) if isinstance(payload, dict) else {}
    if claim.get("decision") != PER_REQUEST:
        return []
    per_request = {name for name in entry.instances if name not in _module_level(entry)}
    built = any(isinstance(node, ast.Name) and node.id in per_request
                for handler in handlers for node in ast.walk(handler))
    if built:
        return []
    return [Finding("COD052", "error", f"{layout.root.name}/agent_server/agent.py",
                    f"the code report says each request builds its own agent ({claim.get('factory')}), but no "
                    "handler does: the handlers or the report changed after the code step",
                    "run `migrate code --force` again, or build the agent per request in each handler by hand")]


def _module_level(module: ParsedModule) -> set[str]:
    names = set()
    for node in module.tree.body:
        if isinstance(node, ast.Assign):
            names |= {target.id for target in node.targets if isinstance(target, ast.Name)}
    return names
