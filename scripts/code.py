"""`migrate code`: move the agent's code from `original_mlflow_model/` into the app's `agent_server/`.

Reads the download (never modifies it), finds the entry file from MLmodel, rewrites it into
`agent_server/agent.py` with `@invoke`/`@stream` handlers (extract mode, or wrapper mode when extraction
is unsafe; a ChatAgent is kept and served through `agent_server/chat_agent_adapter.py`), copies `code/` as modules of `agent_server` and `artifacts/` into `agent_server/artifacts/`,
and writes a config logged with `model_config=` (kept inside MLmodel) to `agent_server/model_config.yml`.
The new `agent_server/` is built in a staging folder and swapped in whole; files the user changed since an
earlier run are not overwritten without `--force`.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import libcst as cst
import yaml

from scripts.core.findings import Finding
from scripts.core import atomic
from scripts.core.errors import MigrateError
from scripts.core.layout import ORIGINAL_DIR, MigrationLayout, find_app
from scripts.core.reports import StepReport, read_report
from scripts.transform import agent_class, chat_agent, chat_model, factory, handlers, langchain
from scripts.transform import async_native, custom_outputs, entry_segments, user_credentials
from scripts.transform import per_request
from scripts.transform.agent_names import numbered
from scripts.transform.original import read_analysis
from scripts.transform.added_imports import add_imports
from scripts.model.blocking import blocking_calls, parse_app_modules
from scripts.transform.original import OriginalModel, read_original, read_python, syntax_error
from scripts.transform import patterns
from scripts.transform.modules import (APP_PACKAGE, ARTIFACTS_DIR, ENTRY_MODULE, MODEL_CONFIG_FILE, CodeTree,
                                       ModelFiles, plan_code_tree, rewrite_module)

STEP = "code"
MODES = ("sync", "async")
ENTRY_PATH = f"{APP_PACKAGE}/{ENTRY_MODULE}.py"
SYNC_BRIDGE = f"{APP_PACKAGE}/sync_bridge.py"
# Scaffold files this step writes only into an app scaffolded before they existed (never replaced, never stale).
LOOP_BRIDGE = f"{APP_PACKAGE}/loop_bridge.py"
# Agents served through an adapter (scripts/transform/adapted.py), by the report's `transform`.
ADAPTED = {kind.MODE: kind for kind in (chat_agent, chat_model, langchain)}
SCAFFOLD_SHIPPED = (SYNC_BRIDGE, *(kind.ADAPTER.path for kind in ADAPTED.values()), LOOP_BRIDGE)
MODEL_CONFIG_PATH = f"{APP_PACKAGE}/{MODEL_CONFIG_FILE}"
CHAT_TASKS = {"agent/v2/chat": "ChatAgent", "agent/v1/chat": "ChatModel"}
CHAT_GUIDE = ("AgentServer serves only the Responses format and MLflow ships no ChatModel→Responses converter. "
              "Rewrite the class as a ResponsesAgent (predict(request) → ResponsesAgentResponse; assistant content → "
              "output_text message items, tool_calls → function_call items, role tool → function_call_output "
              "items; deltas → text deltas plus one response.output_item.done per message), or replace the "
              "handlers in agent_server/agent.py with ones that do that mapping; then run `migrate check code`")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mode", required=True, choices=MODES,
                        help="sync: keep the agent's sync code and run it in worker threads; async: write async "
                             "handlers and list the blocking calls to convert")
    parser.add_argument("--app", type=Path, help="the app folder (default: the one app folder in --workdir)")
    parser.add_argument("--force", action="store_true",
                        help="overwrite files of agent_server/ that were changed since they were written")


def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


# ---------------------------------------------------------------------------------------------------- the entry module


@dataclass
class EntryModule:
    code: str
    agent: agent_class.AgentModule
    plan: handlers.HandlerPlan
    request_state: per_request.RequestStatePlan
    predict_outputs: custom_outputs.PredictOutputs | None = None  # async: the custom_outputs predict returned


def transform_entry(original: OriginalModel, tree: CodeTree, mode: str,
                    state: per_request.RequestStatePlan) -> tuple[EntryModule, list]:
    shown = f"{ORIGINAL_DIR}/{original.entry.name}"
    source = original.entry_text or read_python(original.entry, shown)  # shapes: a pickled model has none
    # A large file: only the statements a transform may change are parsed (scripts/transform/entry_segments.py).
    segments = None if original.agent.get("langchain") or not original.agent.get("name") else \
        entry_segments.segment(source, {original.agent["name"]})
    if segments is not None:
        print(f"{shown} is {len(source) / 1e6:.1f} MB: transforming the statements that may change, "
              f"{segments.text.count(chr(10)) - len(segments.hidden)} of "
              f"{source.count(chr(10))} lines", file=sys.stderr, flush=True)
        transformed = _transform_source(original, tree, mode, segments.text, shown, segments, state)
        code = segments.restore(transformed[0].code) if transformed else None
        if code is not None:
            transformed[0].code = code
            return transformed[0], _with_original_lines(transformed[1], segments)
    return _transform_source(original, tree, mode, source, shown, None, state)


def _with_original_lines(rewrite, segments: entry_segments.EntrySegments):
    """The rewrite's sites (every list of records with a `line`) at their lines in the original file."""
    changes = {}
    for item in dataclasses.fields(rewrite):
        value = getattr(rewrite, item.name)
        if isinstance(value, list) and value and all(dataclasses.is_dataclass(site) and hasattr(site, "line")
                                                     for site in value):
            changes[item.name] = [dataclasses.replace(site, line=segments.original_line(site.line)) for site in value]
    return dataclasses.replace(rewrite, **changes)


def _transform_source(original: OriginalModel, tree: CodeTree, mode: str, source: str, shown: str,
                      segments: entry_segments.EntrySegments | None,
                      state: per_request.RequestStatePlan) -> tuple[EntryModule, list] | None:
    """The entry module rewritten with its handlers; None when the hidden statements of `segments` use the
    agent's instance (then the whole file is transformed)."""
    try:
        rewrite = rewrite_module(source, tree, original.artifact_keys, ENTRY_PATH, original.model_config is not None,
                                 ModelFiles(original.root, tree))  # patterns: issue 11
    except cst.ParserSyntaxError as error:
        raise syntax_error(error, shown) from error
    module = cst.parse_module(rewrite.code)
    hidden = (segments.names, segments.bindings) if segments else (set(), set())
    taken = agent_class.all_names(module) | hidden[0]
    if original.agent.get("langchain"):  # shapes: a LangChain model from code (scripts/transform/langchain.py)
        agent = langchain.wrap(module, taken, original.entry.name)
        return finish_entry(original, agent, handlers.HandlerPlan(mode, agent.predict, agent.predict_stream),
                            langchain.ADAPTER, state, None), rewrite
    location = agent_class.locate_agent(module, original.agent)
    if location.instance_name and location.instance_name in hidden[0]:
        return None
    chat = CHAT_TASKS.get(original.task or "") or (
        location.interface if location.interface in ("ChatAgent", "ChatModel") else None)
    builder = handlers
    if original.agent.get("factory") and chat is None:  # shapes: set_model(build_agent())
        agent = factory.wrap(module, location, original.agent, taken, original.artifact_keys,
                             original.model_config is not None)
        plan = handlers.HandlerPlan(mode, agent.predict, agent.predict_stream)
    elif chat == "ChatAgent":
        agent = chat_agent.wrap(module, location, taken, original.artifact_keys, original.model_config is not None)
        plan = handlers.HandlerPlan(mode, agent.predict, agent.predict_stream)
        builder = chat_agent.ADAPTER
    elif chat == "ChatModel":  # shapes: converted as a ChatAgent is (scripts/transform/chat_model.py)
        agent = chat_model.wrap(module, location, taken, original.artifact_keys, original.model_config is not None)
        plan = handlers.HandlerPlan(mode, agent.predict, agent.predict_stream)
        builder = chat_model.ADAPTER
    elif chat:
        agent = agent_class.wrap(module, location, f"{location.class_name} is a {chat}", taken,
                                 original.artifact_keys, original.model_config is not None)
        agent.interface = chat
        plan = handlers.HandlerPlan(mode, None, None, refuse=f"{location.class_name} is a {chat}: {CHAT_GUIDE}")
    else:
        try:
            if state.instance_writes:  # request state: extracted, `self.x` would become one global for all
                raise agent_class.NotExtractable(per_request.extraction_refused(state))
            agent = agent_class.extract(module, location, asynchronous=mode == "async", hidden=hidden)
        except agent_class.NotExtractable as reason:
            agent = agent_class.wrap(module, location, str(reason), taken, original.artifact_keys,
                                     original.model_config is not None)
            if not agent_class.defines_method(location, "predict_stream"):
                agent.predict_stream = None
        plan = handlers.HandlerPlan(mode, agent.predict, agent.predict_stream)
        plan = _async_native_plan(plan, agent, location) or plan  # async
        if mode == "async" and plan.predict_stream and not plan.native_async:  # invoke collects the stream
            outputs = custom_outputs.predict_outputs(location.class_node, original.agent.get("line"),
                                                     original.entry.name)
            plan = dataclasses.replace(plan, custom_outputs=outputs.carried if outputs else None)
            return dataclasses.replace(finish_entry(original, agent, plan, builder, state, location),
                                       predict_outputs=outputs), rewrite
    return finish_entry(original, agent, plan, builder, state, location), rewrite


def finish_entry(original: OriginalModel, agent: agent_class.AgentModule, plan: handlers.HandlerPlan,
                 builder, state: per_request.RequestStatePlan, location) -> EntryModule:
    """The module with the handlers `builder` (`handlers`, or an agent kind's `Adapter`) writes for `plan`
    appended and their imports added."""
    plan = dataclasses.replace(plan, invoke_name=numbered("invoke_handler", agent.taken_names),
                               stream_name=numbered("stream_handler", agent.taken_names))
    factory = request_agent_factory(state, agent, location, original)  # request state
    if state.factory:
        plan = dataclasses.replace(plan, predict=per_request.served_by_request_agent(plan.predict),
                                   predict_stream=per_request.served_by_request_agent(plan.predict_stream))
    handler_text = builder.handler_source(plan)
    if state.factory:
        handler_text = per_request.build_in_handlers(handler_text, state.factory)
    text = agent.module.code.rstrip("\n") + "\n" + factory + handler_text
    module = cst.parse_module(text)
    needed = [*agent.needs_imports, *builder.imports_for(plan)]
    for owner, name in needed:
        adapter_functions = [name for kind in ADAPTED.values() for name in kind.ADAPTER.functions]
        if name in ("invoke", "stream", *adapter_functions) and name in agent.taken_names:
            raise MigrateError(f"{original.entry.name} already uses the name `{name}`",
                               f"rename it in a copy of the agent, or edit agent_server/agent.py by hand", code="COD002")
    module = add_imports(module, needed)
    return EntryModule(module.code, agent, plan, state)


# ---------------------------------------------------------------------------------------------------- request state
# Owned by the request-state work (issue 10 §2): build the agent per request, or refuse; facts from analyze.


def request_agent_factory(state: per_request.RequestStatePlan, agent: agent_class.AgentModule, location,
                          original: OriginalModel) -> str:
    """The factory's source when wrapper mode serves an agent whose request path writes `self.*` (else "")."""
    if state.decision != per_request.PER_REQUEST:
        return ""
    if location is None or agent.mode != "wrapper" or agent.interface in CHAT_TASKS.values():
        state.decision = per_request.REFUSED  # a ChatAgent/ChatModel is served through its own adapter
        return ""
    call = per_request.construction_call(location)
    if call is None:
        state.decision = per_request.REFUSED
        state.costs.append({"path": original.entry.name, "line": 1, "call": location.class_name,
                            "kind": "arguments", "function": "<module>",
                            "text": "the module builds the agent with arguments that call functions"})
        return ""
    return per_request.factory_source(state, location.class_name, call, agent.taken_names,
                                      original.artifact_keys, original.model_config is not None)


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


def _async_native_plan(plan: handlers.HandlerPlan, agent: agent_class.AgentModule,
                       location: agent_class.AgentLocation) -> handlers.HandlerPlan | None:
    """Handlers that call the kept class's own async methods (scripts/transform/async_native.py), if it has them."""
    twins = async_native.async_twins(location.class_node)
    if agent.mode != "wrapper" or not twins or not agent.predict:
        return None
    instance = agent.predict.rpartition(".")[0]
    agent.async_methods = twins
    return handlers.HandlerPlan(plan.mode, f"{instance}.{twins['predict']}" if "predict" in twins else None,
                                f"{instance}.{twins['predict_stream']}" if "predict_stream" in twins else None,
                                native_async=True)


# Calls that start or nest an event loop; files without these words are not parsed again in sync mode.
LOOP_WORDS = (b"asyncio", b"run_until_complete", b"nest_asyncio")


def request_path_roots(entry: EntryModule, in_threads: bool) -> list[tuple[str, str]]:
    """The handlers, and the agent's own methods they hand to worker threads (sync mode, ChatAgent)."""
    module = f"{APP_PACKAGE}.{ENTRY_MODULE}"
    roots = [(module, entry.plan.invoke_name), (module, entry.plan.stream_name)]
    for call in (entry.plan.predict, entry.plan.predict_stream) if in_threads else ():
        if call:
            owner, _, method = call.rpartition(".")
            roots.append((module, f"{entry.agent.class_name}.{method}" if owner else method))
    return roots


def served_methods(plan: handlers.HandlerPlan) -> list[str]:
    """The agent's methods the handlers call (async invoke collects the stream instead of calling predict)."""
    if plan.refuse is not None:
        return []
    served = ["predict_stream"] if plan.predict_stream else []
    if plan.predict and not (plan.mode == "async" and plan.predict_stream):
        served.insert(0, "predict")
    return served


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
                        f"(`asyncio.to_thread`, request context copied), so it never blocks the event loop",
                        f"to serve it on the loop, write `async def predict` (or an `apredict`) with async calls, "
                        f"then run `migrate code --mode async --force` again")]
    return []


# ---------------------------------------------------------------------------------------------------- files


def planned_files(original: OriginalModel, tree: CodeTree, entry_code: str) -> tuple[dict[str, bytes], dict[str, str], list]:
    """Every file this step writes under the app (relative path → content), where each comes from, rewrites."""
    files: dict[str, bytes] = {ENTRY_PATH: entry_code.encode("utf-8")}
    sources = {ENTRY_PATH: original.entry.name}
    rewrites = []
    for source, target in tree.files.items():
        data = (original.root / source).read_bytes()
        if target.endswith(".py"):
            text = read_python(original.root / source, f"{ORIGINAL_DIR}/{source}")
            try:
                rewrite = rewrite_module(text, tree, original.artifact_keys, target, original.model_config is not None,
                                         ModelFiles(original.root, tree))  # patterns: issue 11
            except cst.ParserSyntaxError as error:
                raise syntax_error(error, f"{ORIGINAL_DIR}/{source}") from error
            rewrites.append((target, rewrite))
            data = rewrite.code.encode("utf-8")
        files[target] = data
        sources[target] = source
    if original.model_config is not None:
        header = ("# The model config logged with the agent (MLmodel flavors.python_function.config), written by\n"
                  "# `migrate code`: ModelConfig(...) in the agent reads this file in the app.\n")
        files[MODEL_CONFIG_PATH] = (header + yaml.safe_dump(original.model_config, sort_keys=False)).encode("utf-8")
        sources[MODEL_CONFIG_PATH] = "MLmodel"
    artifacts = original.root / ARTIFACTS_DIR
    if artifacts.is_dir():
        for path in sorted(artifacts.rglob("*")):
            if path.is_file():
                relative = path.relative_to(original.root).as_posix()
                files[f"{APP_PACKAGE}/{relative}"] = path.read_bytes()
                sources[f"{APP_PACKAGE}/{relative}"] = relative
    return files, sources, rewrites


def previously_written(layout: MigrationLayout) -> dict[str, str]:
    """Hashes of what earlier runs of this step (and the scaffold, for agent.py) wrote, by app path."""
    written = {}
    scaffold = read_report(layout, "scaffold")
    for entry in (scaffold or {}).get("payload", {}).get("files", []):
        if entry["path"] == ENTRY_PATH and entry.get("written_sha256"):
            written[ENTRY_PATH] = entry["written_sha256"]
    previous = read_report(layout, STEP)
    for entry in (previous or {}).get("payload", {}).get("files", []):
        written[entry["path"]] = entry["sha256"]
    return written


def changed_by_user(app_dir: Path, files: dict[str, bytes], written: dict[str, str]) -> list[str]:
    changed = []
    for relative, content in files.items():
        target = app_dir / relative
        if not target.is_file():
            continue
        current = sha256(target.read_bytes())
        if current != sha256(content) and written.get(relative) != current:
            changed.append(relative)
    return changed


def build_agent_server(app_dir: Path, files: dict[str, bytes], stale: set[str]) -> Path:
    """A staging copy of agent_server/ with this step's files in place; files of others are kept."""
    target = app_dir / APP_PACKAGE
    staged = atomic.staging_dir(target)
    try:
        if target.is_dir():
            shutil.copytree(target, staged, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
        for relative in stale:  # paths from the last report: resolved, and only ever inside agent_server/
            stale_file = (staged / Path(relative).relative_to(APP_PACKAGE)).resolve()
            if not stale_file.is_relative_to(staged.resolve()):
                raise MigrateError(f"the code report names {relative}, outside {APP_PACKAGE}/",
                                   "run `migrate code --force` after deleting migration/reports/code.json; "
                                   "reports are never edited by hand")
            stale_file.unlink(missing_ok=True)
        for relative, content in files.items():
            path = staged / Path(relative).relative_to(APP_PACKAGE)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    return staged


# ---------------------------------------------------------------------------------------------------- the step


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


def migrate_code(workdir: Path, app: Path | None, mode: str, force: bool) -> StepReport:
    layout = find_app(workdir, app)
    app_dir = layout.root
    report = StepReport(step=STEP, inputs={"mode": mode, "app": layout.relative(app_dir), "force": force},
                        layout=layout)
    original = read_original(layout)
    tree = plan_code_tree(original.root / "code")
    request_state = per_request.plan_request_state(read_analysis(layout)["state"])  # request state
    entry, entry_rewrite = transform_entry(original, tree, mode, request_state)
    files, sources, rewrites = planned_files(original, tree, entry.code)
    credential_sites = user_credentials.rewrite_app_files(files, APP_PACKAGE)  # user-identity
    name_sites = patterns.add_original_names(files, sources, tree, ENTRY_PATH, original.root)  # patterns: issue 11
    rewrites.insert(0, (ENTRY_PATH, entry_rewrite))
    shipped = [SYNC_BRIDGE] if mode == "sync" else []
    if mode == "sync" and entry.plan.native_async:
        shipped = [SYNC_BRIDGE, LOOP_BRIDGE]  # async-native agent: its coroutines on one background loop
    if entry.agent.mode in ADAPTED:  # served through an adapter, in worker threads in both modes
        shipped = [SYNC_BRIDGE, ADAPTED[entry.agent.mode].ADAPTER.path]
    for relative in shipped:
        if not (app_dir / relative).is_file():  # an app scaffolded before the file existed
            files[relative] = (Path(__file__).resolve().parent.parent / relative).read_bytes()
            sources[relative] = "scaffold"

    written = previously_written(layout)
    changed = changed_by_user(app_dir, files, written)
    if changed and not force:
        raise MigrateError(f"{len(changed)} file(s) in {app_dir.name}/ changed since they were written: "
                           f"{', '.join(changed)}",
                           "keep your changes elsewhere, or pass --force to overwrite them", code="COD003")
    previous = read_report(layout, STEP) or {}
    stale = {entry_["path"] for entry_ in previous.get("payload", {}).get("files", [])
             if entry_["path"] not in files and entry_["path"] not in SCAFFOLD_SHIPPED}
    staged = build_agent_server(app_dir, files, stale)
    try:
        found_blocking = []
        if mode == "async" or any(word in content for content in files.values() for word in LOOP_WORDS):
            modules = parse_app_modules(staged, APP_PACKAGE, lazy=True)  # a large agent: only what is reached
            in_threads = mode == "sync" or entry.agent.mode in ADAPTED
            found_blocking = blocking_calls(modules, request_path_roots(entry, in_threads))
            if in_threads:  # worker threads may block; only starting or nesting a loop is wrong there
                found_blocking = [site for site in found_blocking if site.kind == "event-loop"]
        atomic.replace_dir(staged, app_dir / APP_PACKAGE)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise

    agent = entry.agent
    app_name = app_dir.name
    if entry.plan.refuse is not None:
        report.findings.append(Finding(
            "COD005", "error", f"{app_name}/{ENTRY_PATH}",
            f"{agent.class_name} is a {agent.interface}: the handlers written only explain what is left to do",
            CHAT_GUIDE))
    elif agent.mode in ADAPTED:  # a ChatAgent, a ChatModel, a LangChain runnable: what the adapter maps
        report.findings.append(ADAPTED[agent.mode].served_finding(agent, f"{app_name}/{ENTRY_PATH}"))
    elif agent.mode == "wrapper":
        report.findings.append(Finding(
            "COD004", "warning", f"{app_name}/{ENTRY_PATH}",
            f"wrapper mode: {agent.class_name} is kept and "
            + ("each request builds its own instance" if entry.request_state.factory  # request state
               else "one module-level instance serves every request") + f", because {agent.reasons[0]}",
            "nothing is required; to get module-level functions, remove what made extraction unsafe and "
            "run `migrate code --force` again, or edit agent_server/agent.py by hand"))
    for method in agent.params_kept:
        report.findings.append(Finding(
            "COD006", "warning", f"{app_name}/{ENTRY_PATH}",
            f"{method} reads `params`, which AgentServer never passes (it stays None)",
            f"move what `params` carried into request.custom_inputs or configuration, then drop the parameter"))
    for path, rewrite in rewrites:
        for site in rewrite.artifacts:
            if site.target is None:
                report.findings.append(Finding(
                    "COD007", "warning", f"{app_name}/{path}:{site.line}",
                    f"{site.reference} names no artifact of MLmodel, so its path was not rewritten",
                    "point it at a file under agent_server/artifacts/ with "
                    "`Path(__file__).parent / \"artifacts\" / NAME`"))
            elif not (original.root / ARTIFACTS_DIR / site.target).exists():
                report.findings.append(Finding(
                    "COD007", "warning", f"{app_name}/{path}:{site.line}",
                    f"{site.reference} points at artifacts/{site.target}, which the download does not have",
                    "add the file under agent_server/artifacts/ or fix the path"))
    for old, new in tree.renamed.items():
        report.findings.append(Finding(
            "COD008", "info", f"{app_name}/{APP_PACKAGE}/{new}",
            f"code/{old} is named like a file of the scaffold, so it became agent_server.{new}; imports follow",
            "nothing to do"))
    # Async invoke collects the stream (handlers.handler_source): the class's own predict is not called, in
    # extract mode (where it is dropped) and in wrapper mode (where it stays on the class) alike.
    report.findings += async_native_findings(app_name, entry)  # async
    if mode == "async" and entry.plan.refuse is None and not entry.plan.native_async and (
            (agent.mode == "extract" and "predict_stream" in agent.functions)
            or (agent.mode == "wrapper" and entry.plan.predict_stream is not None)):
        report.findings.append(uncalled_predict_finding(app_name, entry))
    report.findings += user_credentials.site_findings(app_name, credential_sites)  # user-identity
    report.findings += request_state_findings(app_name, entry)  # request state
    report.findings += patterns.findings(app_name, rewrites, name_sites)  # patterns: issue 11
    for site in [site for site in found_blocking if site.kind == "event-loop"]:
        report.findings.append(Finding(
            "COD022", "error", f"{app_name}/{site.path}:{site.line}",
            f"`{site.call}` on the request path (in {site.function}): the app's server already runs an event "
            f"loop, so this fails (`asyncio.run`) or deadlocks (nested loops) under load", site.fix))
    for site in [site for site in found_blocking if site.kind != "event-loop"]:
        report.findings.append(Finding(
            "COD010", "warning", f"{app_name}/{site.path}:{site.line}",
            f"`{site.call}` blocks the event loop ({site.kind}, in {site.function})", site.fix))

    report.payload = {
        "mode": mode,
        "transform": "not_converted" if entry.plan.refuse else agent.mode,
        "agent_class": agent.class_name,
        "interface": agent.interface,
        "entry_source": f"original_mlflow_model/{original.entry.name}",
        "entry_module": ENTRY_PATH,
        "wrapper_reason": agent.reasons[0] if agent.reasons else None,
        "handlers": {"invoke": entry.plan.invoke_name, "stream": entry.plan.stream_name},
        "served_methods": served_methods(entry.plan),
        "predict_calls_predict_stream": agent.predict_calls_stream,
        "state": agent.state,
        "request_state": entry.request_state.facts(),
        "functions": agent.functions,
        "renamed_modules": tree.renamed,
        "import_rewrites": [{"path": path, "from": old, "to": new}
                            for path, rewrite in rewrites for old, new in rewrite.imports],
        "artifact_references": [{"path": path, "line": site.line, "reference": site.reference,
                                 "target": f"{APP_PACKAGE}/{ARTIFACTS_DIR}/{site.target}" if site.target else None}
                                for path, rewrite in rewrites for site in rewrite.artifacts]
                               + [{"path": path, "line": site.line, "reference": site.reference,
                                   "target": MODEL_CONFIG_PATH}
                                  for path, rewrite in rewrites for site in rewrite.model_config],
        "blocking_calls": [{"path": site.path, "line": site.line, "call": site.call, "kind": site.kind,
                            "function": site.function, "fix": site.fix} for site in found_blocking],
        "files": [{"path": path, "source": sources[path], "sha256": sha256(content)}
                  for path, content in sorted(files.items())],
    }
    report.outputs = {"agent_server": layout.relative(app_dir / APP_PACKAGE)}
    return report


def run(args: argparse.Namespace) -> StepReport:
    report = migrate_code(args.workdir, args.app, args.mode, args.force)
    payload = report.payload
    print(f"{payload['entry_source']} → {payload['entry_module']} ({payload['transform']} mode, "
          f"{payload['mode']} handlers)")
    print(f"  {len(payload['files'])} file(s) written under {report.outputs['agent_server']}/")
    return report
