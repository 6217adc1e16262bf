"""The code step's entry module: the agent's file rewritten into `agent_server/agent.py` with its handlers.

Which transform serves the agent (extract, wrapper, per request, async-native, an adapter for ChatAgent,
ChatModel and LangChain models, a factory), the handlers written for the mode, and what the request path is
(the roots the blocking-call search starts from). `scripts/code.py` writes the files; `scripts/code_findings.py`
says what the transform did.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass

import libcst as cst

from scripts.core.errors import MigrateError
from scripts.core.layout import ORIGINAL_DIR
from scripts.transform import adapted, agent_class, chat_agent, chat_model, factory, handlers, langchain
from scripts.transform import async_native, custom_outputs, entry_segments, per_request
from scripts.transform.added_imports import add_imports
from scripts.transform.agent_names import numbered
from scripts.transform.module_rewrite import rewrite_module
from scripts.transform.modules import APP_PACKAGE, ENTRY_MODULE, MODEL_CONFIG_FILE, CodeTree, ModelFiles
from scripts.transform.original import OriginalModel, read_python, syntax_error

ENTRY_PATH = f"{APP_PACKAGE}/{ENTRY_MODULE}.py"
# Agents served through an adapter (scripts/transform/adapted.py), by the report's `transform`.
ADAPTED = {kind.MODE: kind for kind in (chat_agent, chat_model, langchain)}
MODEL_CONFIG_PATH = f"{APP_PACKAGE}/{MODEL_CONFIG_FILE}"
CHAT_TASKS = {"agent/v2/chat": "ChatAgent", "agent/v1/chat": "ChatModel"}
CHAT_ADAPTERS = {"ChatAgent": chat_agent.ADAPTER, "ChatModel": chat_model.ADAPTER}
CHAT_GUIDE = ("AgentServer serves only the Responses format and MLflow ships no ChatModel→Responses converter. "
              "Rewrite the class as a ResponsesAgent (predict(request) → ResponsesAgentResponse; assistant content → "
              "output_text message items, tool_calls → function_call items, role tool → function_call_output "
              "items; deltas → text deltas plus one response.output_item.done per message), or replace the "
              "handlers in agent_server/agent.py with ones that do that mapping; then run `migrate check code`")




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
    elif chat in CHAT_ADAPTERS:  # kept as written, served through its adapter (scripts/transform/adapted.py)
        builder = CHAT_ADAPTERS[chat]
        agent = adapted.wrap_class(builder, chat, module, location, taken, original.artifact_keys,
                                   original.model_config is not None)
        plan = handlers.HandlerPlan(mode, agent.predict, agent.predict_stream)
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


