"""Extract mode: the agent class becomes module-level state and functions the handlers call.

Class attributes, `__init__` and `load_context` become module state created once at import, methods become
module functions, `self.x` becomes `x` (renamed where the name is taken), `params` is dropped, and
`mlflow.models.set_model(...)` is removed. `predict` calling `self.predict_stream` keeps doing so.
"""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from scripts.transform import agent_safety as safety
from scripts.transform.agent_module import RESPONSES_HELPERS, AgentModule
from scripts.transform.agent_names import (ReferencedNames, free_names, local_names, module_bindings, names_in,
                                           pick)
from scripts.transform.agent_rewrite import (NameRenamer, Rewriter, drop_first_param, make_async, rename_target,
                                             with_global, with_leading, without_param)
from scripts.transform.async_native import async_twins
from scripts.transform.location import AgentLocation
from scripts.transform.agent_safety import SETUP_METHODS, Method, NotExtractable


@dataclass
class _Naming:
    taken: set[str]
    state: dict[str, str]  # self.x → module name
    functions: dict[str, str]  # method → module function


def _naming(module: cst.Module, location: AgentLocation, methods: dict[str, Method], attributes: dict,
            state: set[str], skip: set[int], hidden: tuple[set[str], set[str]]) -> _Naming:
    """Module names for the state and the methods: every identifier the module already uses is taken
    (`hidden`: the names and bindings of statements the transform was not given, see entry_segments)."""
    own = {id(method.node.name) for method in methods.values()} | {
        id(statement.body[0].targets[0].target if isinstance(statement.body[0], cst.Assign)
           else statement.body[0].target) for statement in attributes.values()}
    taken_visitor = ReferencedNames(own)
    for statement in module.body:
        statement.visit(taken_visitor)
    taken = (taken_visitor.names | hidden[0]) - {location.class_name, location.instance_name or "", "self"}
    setup_locals = set()
    for name in SETUP_METHODS:
        if name in methods:
            setup_locals |= local_names(methods[name].node) - {methods[name].self_name or ""}
    others_free = set().union(*[free_names(method.node) for key, method in methods.items() if key not in SETUP_METHODS])
    clash = setup_locals & (others_free | module_bindings(module, skip) | hidden[1])
    if clash:
        raise NotExtractable(f"a local variable of __init__/load_context ({sorted(clash)[0]}) would replace "
                             f"a module name once it runs at module level")
    taken |= setup_locals
    names = {attribute: pick(attribute, taken) for attribute in sorted(attributes) + sorted(state - set(attributes))}
    functions = {method: pick(method, taken) for method in methods if method not in SETUP_METHODS}
    return _Naming(taken, names, functions)


def _module_function(name: str, method: Method, naming: _Naming, rewriter: Rewriter, asynchronous: bool,
                     params_kept: list[str]) -> cst.FunctionDef:
    """One method as a module function: no self, no unused `params`, globals declared, async when served."""
    function = method.node
    if method.self_name is not None:
        function = drop_first_param(function)
    else:
        function = function.with_changes(decorators=[
            decorator for decorator in function.decorators
            if safety.decorator_names(function.with_changes(decorators=[decorator])) != ["staticmethod"]])
    if name in ("predict", "predict_stream"):
        params = {param.name.value for param in [*function.params.params, *function.params.kwonly_params]}
        if "params" in params:
            if "params" in names_in(function.body.body):
                params_kept.append(name)
            else:
                function = without_param(function, "params")
    global_names = sorted(naming.state[attribute] for attribute in method.assigns)
    function = function.visit(rewriter).with_changes(name=cst.Name(naming.functions[name]))
    if global_names:
        function = with_global(function, global_names)
    if asynchronous and name in ("predict_stream", "predict"):
        function = make_async(function)
    return function


def _generated(location: AgentLocation, methods: dict[str, Method], attributes: dict, naming: _Naming,
               rewriter: Rewriter, asynchronous: bool, drop_predict: bool, params_kept: list[str],
               sync_predict: bool = False) -> list:
    """The class's attributes and methods as module statements, in the class's order."""
    generated: list[cst.BaseStatement] = []
    for attribute, statement in attributes.items():
        renamed = rename_target(statement.body[0], naming.state[attribute])
        generated.append(statement.with_changes(body=[renamed.visit(NameRenamer(naming.state))]))
    for name, method in methods.items():
        if name in SETUP_METHODS or (drop_predict and name == "predict"):
            continue
        function = _module_function(name, method, naming, rewriter,
                                    asynchronous and not (sync_predict and name == "predict"), params_kept)
        if generated:  # two blank lines between module-level functions, as between top-level code
            function = function.with_changes(leading_lines=[cst.EmptyLine(), *function.leading_lines])
        generated.append(function)
    if generated:
        header = cst.EmptyLine(comment=cst.Comment(
            f"# The agent, formerly class {location.class_name}: its state is created once, at import, "
            f"and shared by every request."))
        generated[0] = generated[0].with_changes(leading_lines=[*location.class_node.leading_lines, header])
    return generated


def _setup(location: AgentLocation, methods: dict[str, Method], rewriter: Rewriter) -> list:
    """The bodies of __init__ and load_context, as statements run once at import."""
    setup: list[cst.BaseStatement] = []
    for name in SETUP_METHODS:
        if name in methods:
            body = [statement for statement in methods[name].node.body.body
                    if not safety.is_docstring(statement) and not safety.is_super_init(statement)]
            setup.extend(statement.visit(rewriter) for statement in body)
    if setup:
        setup[0] = setup[0].with_changes(leading_lines=[
            cst.EmptyLine(comment=cst.Comment(
                f"# Formerly {location.class_name}.__init__/load_context: runs once, when the module is imported.")),
            *getattr(setup[0], "leading_lines", ())])
    return setup


def _new_body(module: cst.Module, location: AgentLocation, generated: list, setup: list,
              outside: Rewriter) -> list:
    """The module's statements with the class replaced by `generated` and its setup placed where the instance
    was created (or registered); elsewhere only statements naming the instance are rewritten."""
    new_body: list[cst.BaseStatement] = []
    placed_setup = False
    receivers = outside.receivers
    for statement in module.body:
        if statement is location.class_node:
            new_body.extend(generated)
            if location.instance_statement is None and not location.set_model_statements:
                new_body.extend(setup)
                placed_setup = True
        elif statement is location.instance_statement:
            if not placed_setup:
                new_body.extend(with_leading(setup, statement))
                placed_setup = True
        elif statement in location.set_model_statements:
            if location.instance_statement is None and not placed_setup:
                new_body.extend(with_leading(setup, statement))
                placed_setup = True
        elif location.instance_name and names_in([statement]) & receivers:
            new_body.append(statement.visit(outside))
        else:
            new_body.append(statement)
    if not placed_setup:
        new_body.extend(setup)
    return new_body


def extract(module: cst.Module, location: AgentLocation, asynchronous: bool,
            hidden: tuple[set[str], set[str]] = (set(), set())) -> AgentModule:
    """The module with the agent class extracted into module functions; NotExtractable when unsafe."""
    node = location.class_node
    if node is None:
        raise NotExtractable(f"the class {location.class_name} is defined in another module")
    if location.chain:
        raise NotExtractable(f"{location.class_name} derives from {', '.join(location.chain)} (an inheritance chain)")
    if location.interface != "ResponsesAgent":
        raise NotExtractable(f"{location.class_name} is a {location.interface}, not a ResponsesAgent")
    twins = async_twins(node)
    if twins:
        raise NotExtractable(f"{location.class_name} is async-native ({', '.join(sorted(set(twins.values())))}): "
                             f"the handlers call its async methods on the instance")
    methods, attributes = safety.class_members(node, location.class_name)
    skip = {id(node), id(location.instance_statement)} | {id(statement) for statement in location.set_model_statements}
    safety.check_module_uses(module, location, skip)
    safety.check_methods(methods, location.class_name)
    state = safety.check_state(methods, attributes, RESPONSES_HELPERS)
    naming = _naming(module, location, methods, attributes, state, skip, hidden)

    receivers = {location.class_name} | ({location.instance_name} if location.instance_name else set())
    renames = {**naming.state, **naming.functions}
    rewriter = Rewriter(receivers | {method.self_name for method in methods.values() if method.self_name},
                        renames, RESPONSES_HELPERS)
    # Outside the class only the instance and the class name refer to the agent (another class's `self` does not).
    outside = Rewriter(receivers, renames, {})
    params_kept: list[str] = []
    # Async invoke collects the stream, so predict is dropped, unless another method calls it (a predict_stream
    # streaming predict's items): then it stays a sync function they call, and its blocking calls are listed.
    predict_called = any("predict" in method.reads for name, method in methods.items() if name != "predict")
    drop_predict = asynchronous and "predict_stream" in methods and not predict_called
    sync_predict = asynchronous and predict_called
    generated = _generated(location, methods, attributes, naming, rewriter, asynchronous, drop_predict, params_kept,
                           sync_predict)
    setup = _setup(location, methods, rewriter)
    new_body = _new_body(module, location, generated, setup, outside)
    needs = [("mlflow.types.responses", helper) for helper in sorted(rewriter.used_helpers)]
    return AgentModule(module.with_changes(body=new_body), "extract", location.class_name, location.interface, [],
                       naming.functions["predict"] if not drop_predict else None,
                       naming.functions.get("predict_stream"), "predict_stream" in methods["predict"].reads, needs,
                       naming.taken | set(naming.functions.values()) | set(naming.state.values()), params_kept,
                       naming.state, naming.functions)
