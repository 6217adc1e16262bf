"""The code step's findings: what the transform did to the agent, and what it leaves to the assistant.

Each finding names the app file and line; the codes are documented in skills/migrate-code/SKILL.md.
"""

from __future__ import annotations

from pathlib import Path

from scripts.core.findings import Finding
from scripts.core.layout import ORIGINAL_DIR
from scripts.code_entry import ADAPTED, CHAT_GUIDE, ENTRY_PATH, EntryModule
from scripts.transform import patterns, per_request, user_credentials
from scripts.transform.modules import APP_PACKAGE, ARTIFACTS_DIR, CodeTree
from scripts.transform.original import OriginalModel


def step_findings(app_dir: Path, mode: str, entry: EntryModule, original: OriginalModel, tree: CodeTree,
                  rewrites: list, credential_sites: list, name_sites: list, found_blocking: list) -> list[Finding]:
    """What the code step did and what it leaves to do, in the order a reader meets it."""
    agent = entry.agent
    app_name = app_dir.name
    findings = agent_mode_findings(app_name, entry)
    findings += artifact_findings(app_name, rewrites, original)
    findings += renamed_findings(app_name, tree)
    # Async invoke collects the stream (handlers.handler_source): the class's own predict is not called, in
    # extract mode (where it is dropped) and in wrapper mode (where it stays on the class) alike.
    findings += async_native_findings(app_name, entry)  # async
    if mode == "async" and entry.plan.refuse is None and not entry.plan.native_async and (
            (agent.mode == "extract" and "predict_stream" in agent.functions)
            or (agent.mode == "wrapper" and entry.plan.predict_stream is not None)):
        findings.append(uncalled_predict_finding(app_name, entry))
    findings += user_credentials.site_findings(app_name, credential_sites)  # user-identity
    findings += request_state_findings(app_name, entry)  # request state
    findings += patterns.findings(app_name, rewrites, name_sites)  # patterns: issue 11
    findings += blocking_findings(app_name, found_blocking)
    return findings


def agent_mode_findings(app_name: str, entry: EntryModule) -> list[Finding]:
    """How the agent is served (COD005 refused, an adapter's mapping, COD004 wrapper mode) and COD006 `params`."""
    agent = entry.agent
    findings: list[Finding] = []
    if entry.plan.refuse is not None:
        findings.append(Finding(
            "COD005", "error", f"{app_name}/{ENTRY_PATH}",
            f"{agent.class_name} is a {agent.interface}: the handlers written only explain what is left to do",
            CHAT_GUIDE))
    elif agent.mode in ADAPTED:  # a ChatAgent, a ChatModel, a LangChain runnable: what the adapter maps
        findings.append(ADAPTED[agent.mode].served_finding(agent, f"{app_name}/{ENTRY_PATH}"))
    elif agent.mode == "wrapper":
        findings.append(Finding(
            "COD004", "warning", f"{app_name}/{ENTRY_PATH}",
            f"wrapper mode: {agent.class_name} is kept and "
            + ("each request builds its own instance" if entry.request_state.factory  # request state
               else "one module-level instance serves every request") + f", because {agent.reasons[0]}",
            "nothing is required; to get module-level functions, remove what made extraction unsafe and "
            "run `migrate code --force` again, or edit agent_server/agent.py by hand"))
    for method in agent.params_kept:
        findings.append(Finding(
            "COD006", "warning", f"{app_name}/{ENTRY_PATH}",
            f"{method} reads `params`, which AgentServer never passes (it stays None)",
            "move what `params` carried into request.custom_inputs or configuration, then drop the parameter"))
    return findings


def artifact_findings(app_name: str, rewrites: list, original: OriginalModel) -> list[Finding]:
    """COD007: an artifact path the code names that MLmodel does not declare, or the download does not have."""
    findings = []
    for path, rewrite in rewrites:
        for site in rewrite.artifacts:
            if site.target is None:
                findings.append(Finding(
                    "COD007", "warning", f"{app_name}/{path}:{site.line}",
                    f"{site.reference} names no artifact of MLmodel, so its path was not rewritten",
                    "point it at a file under agent_server/artifacts/ with "
                    "`Path(__file__).parent / \"artifacts\" / NAME`"))
            elif not (original.root / ARTIFACTS_DIR / site.target).exists():
                findings.append(Finding(
                    "COD007", "warning", f"{app_name}/{path}:{site.line}",
                    f"{site.reference} points at artifacts/{site.target}, which the download does not have",
                    "add the file under agent_server/artifacts/ or fix the path"))
    return findings


def renamed_findings(app_name: str, tree: CodeTree) -> list[Finding]:
    """COD008: a code/ module named like a file of the scaffold, renamed."""
    return [Finding("COD008", "info", f"{app_name}/{APP_PACKAGE}/{new}",
                    f"code/{old} is named like a file of the scaffold, so it became agent_server.{new}; imports follow",
                    "nothing to do") for old, new in tree.renamed.items()]


def blocking_findings(app_name: str, found_blocking: list) -> list[Finding]:
    """COD022: an event loop started on the request path; COD010: a call that blocks the event loop."""
    findings = []
    for site in [site for site in found_blocking if site.kind == "event-loop"]:
        findings.append(Finding(
            "COD022", "error", f"{app_name}/{site.path}:{site.line}",
            f"`{site.call}` on the request path (in {site.function}): the app's server already runs an event "
            f"loop, so this fails (`asyncio.run`) or deadlocks (nested loops) under load", site.fix))
    for site in [site for site in found_blocking if site.kind != "event-loop"]:
        findings.append(Finding(
            "COD010", "warning", f"{app_name}/{site.path}:{site.line}",
            f"`{site.call}` blocks the event loop ({site.kind}, in {site.function})", site.fix))
    return findings


def request_state_findings(app_name: str, entry: EntryModule) -> list[Finding]:
    """COD050: `self.*` written per request on one shared instance; COD051: globals written per request."""
    state, where = entry.request_state, f"{app_name}/{ENTRY_PATH}"
    findings = []
    if state.instance_writes and state.decision != per_request.PER_REQUEST:
        costs = "; ".join(f"{cost['path']}:{cost['line']} {cost['call']} ({cost['kind']})" for cost in state.costs)
        findings.append(Finding(
            "COD050", "error", where,
            f"{entry.agent.class_name}'s request path writes its own attributes ({per_request.lines_of(state.instance_writes)}) "
            f"and one instance serves every request, so concurrent users see each other's values; building it per "
            f"request is not cheap" + (f" ({costs})" if costs else ""),
            "either keep per-request values in local variables (pass them as arguments) instead of on `self`, or "
            "make construction cheap (no network, file or model loads in __init__/load_context: create those once at "
            "module level) so the code step builds one agent per request; then `migrate analyze` and "
            "`migrate code --force`"))
    if state.shared_writes:
        findings.append(Finding(
            "COD051", "error", where,
            f"the request path writes module globals or class attributes ({per_request.lines_of(state.shared_writes)}): "
            f"every concurrent request of the app shares them",
            "keep per-request values in local variables (return them, pass them as arguments); a cache shared on "
            "purpose needs a lock and must hold nothing user-specific; then `migrate analyze` and "
            "`migrate code --force`"))
    if state.guarded_writes:
        findings.append(Finding(
            "COD053", "warning", where,
            f"state written per request under a lock ({per_request.lines_of(state.guarded_writes)}) is shared by "
            "every request on purpose",
            "make sure one user can never read what another wrote there: key it by user or conversation, and keep "
            "credentials and user clients out of it"))
    return findings


def async_native_findings(app_name: str, entry: EntryModule) -> list[Finding]:
    """COD100: the handlers call the agent's own async methods; COD101: a kept sync predict runs in a thread."""
    plan, agent, where = entry.plan, entry.agent, f"{app_name}/{ENTRY_PATH}"
    if plan.refuse is not None or agent.mode != "wrapper":
        return []
    if plan.native_async:
        called = ", ".join(f"{method} → {twin}" for method, twin in sorted(agent.async_methods.items()))
        how = ("awaited on the server's event loop (`await`, `async for`)" if plan.mode == "async" else
               "run on one background event loop shared by all requests (agent_server/loop_bridge.py)")
        return [Finding("COD100", "info", where,
                        f"{agent.class_name} is async-native: the handlers call its async methods ({called}), {how}, "
                        f"instead of the sync wrappers that started an event loop per call",
                        "nothing to do; the sync wrappers stay on the class for Model Serving and are not called")]
    if plan.mode == "async" and plan.predict and not plan.predict_stream:
        return [Finding("COD101", "info", where,
                        f"{agent.class_name}.predict is sync: the handlers run it in a worker thread "
                        "(`asyncio.to_thread`, request context copied), so it never blocks the event loop",
                        "to serve it on the loop, write `async def predict` (or an `apredict`) with async calls, "
                        "then run `migrate code --mode async --force` again")]
    return []


def uncalled_predict_finding(app_name: str, entry: EntryModule) -> Finding:
    """COD009: async invoke collects the stream, so the class's predict is not called; what it returned as
    custom_outputs is carried into the invoke when it reads only the request (custom_outputs.py)."""
    agent, outputs, where = entry.agent, entry.predict_outputs, f"{app_name}/{ENTRY_PATH}"
    dropped = agent.mode == "extract" and entry.plan.predict is None
    uncalled = (f"{agent.class_name}.predict is not {'carried over' if dropped else 'called by the invoke'}: "
                f"in async mode invoke collects the stream's finished items")
    if outputs is None:
        return Finding("COD009", "info", where, uncalled,
                       f"if predict did more than collect predict_stream's items, add that to {entry.plan.invoke_name}")
    if outputs.carried:
        return Finding("COD009", "info", where,
                       f"{uncalled}; the custom_outputs it returned (`{outputs.source}`, {ORIGINAL_DIR}/"
                       f"{outputs.path}:{outputs.line}) are returned by {entry.plan.invoke_name}",
                       f"if predict did more than collect predict_stream's items, add that to {entry.plan.invoke_name}")
    return Finding("COD009", "warning", where,
                   f"{uncalled}, so the custom_outputs it returned (`{outputs.source}`, {ORIGINAL_DIR}/"
                   f"{outputs.path}:{outputs.line}) are lost: {outputs.reason}",
                   f"return them from {entry.plan.invoke_name} in {ENTRY_PATH} "
                   f"(`ResponsesAgentResponse(output=outputs, custom_outputs=...)`); `migrate smoke` compares them "
                   f"with the original's")
