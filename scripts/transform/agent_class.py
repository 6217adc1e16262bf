"""The agent class of the entry module, turned into module-level code the `@invoke`/`@stream` handlers call.

Extract mode (the default when it is safe): class attributes, `__init__` and `load_context` become module
state created once at import, methods become module functions, `self.x` becomes `x` (renamed where the
name is taken), `params` is dropped, `mlflow.models.set_model(...)` is removed. `predict` calling
`self.predict_stream` keeps doing so, as `predict_stream(...)`.

Wrapper mode, when extraction could change behaviour (a base class of the user's, `self` passed around,
dynamic attributes, `super()` calls, arguments to `__init__`, ...): the class stays as written, one
module-level instance is created and loaded with its artifacts, and the handlers delegate to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst

from scripts.transform.location import AgentLocation, defines_method, locate_agent  # noqa: F401 (re-exported)
from scripts.transform.location import assignment as _assignment
from scripts.transform.modules import dotted

SETUP_METHODS = ("__init__", "load_context")
# ResponsesAgent's static helpers (`self.create_text_output_item(...)`) and the functions of
# mlflow.types.responses that they call.
RESPONSES_HELPERS = {
    "create_text_delta": "create_text_delta",
    "create_annotation_added": "create_annotation_added",
    "create_text_output_item": "create_text_output_item",
    "create_reasoning_item": "create_reasoning_item",
    "create_function_call_item": "create_function_call_item",
    "create_function_call_output_item": "create_function_call_output_item",
    "output_to_responses_items_stream": "output_to_responses_items_stream",
    "responses_agent_output_reducer": "responses_agent_output_reducer",
    "prep_msgs_for_cc_llm": "to_chat_completions_input",
    "_responses_to_cc": "responses_to_cc",
}
UNSAFE_DECORATORS = ("classmethod", "property", "setter", "getter", "deleter", "cached_property", "abstractmethod")


class NotExtractable(Exception):
    """Why the class cannot be turned into module functions safely: the reason goes into the report."""


@dataclass
class AgentModule:
    """The entry module after the class transform, before the handlers are appended."""

    module: cst.Module
    mode: str  # "extract" | "wrapper"
    class_name: str
    interface: str | None
    reasons: list[str]  # why wrapper mode, empty in extract mode
    predict: str | None  # expression the handlers call
    predict_stream: str | None
    predict_calls_stream: bool
    needs_imports: list[tuple[str, str | None]]
    taken_names: set[str]
    params_kept: list[str] = field(default_factory=list)
    state: dict[str, str] = field(default_factory=dict)  # self.x → module name
    functions: dict[str, str] = field(default_factory=dict)  # method → module function


# ---------------------------------------------------------------------------------------------------- names


class _LocalNames(cst.CSTVisitor):
    """Names bound inside one function's own scope (parameters, assignments, loops, imports, nested defs)."""

    def __init__(self, function: cst.FunctionDef):
        self.function = function
        self.names: set[str] = set()

    def visit_FunctionDef(self, node):
        if node is self.function:
            return True
        self.names.add(node.name.value)
        return False

    def visit_ClassDef(self, node):
        self.names.add(node.name.value)
        return False

    def visit_Lambda(self, node):
        return False

    def visit_Param(self, node):
        self.names.add(node.name.value)

    def _targets(self, target: cst.BaseExpression) -> None:
        if isinstance(target, cst.Name):
            self.names.add(target.value)
        elif isinstance(target, (cst.Tuple, cst.List)):
            for element in target.elements:
                self._targets(element.value)
        elif isinstance(target, cst.StarredElement):
            self._targets(target.value)

    def visit_AssignTarget(self, node):
        self._targets(node.target)

    def visit_AnnAssign(self, node):
        self._targets(node.target)

    def visit_AugAssign(self, node):
        self._targets(node.target)

    def visit_For(self, node):
        self._targets(node.target)

    def visit_WithItem(self, node):
        if node.asname:
            self._targets(node.asname.name)

    def visit_ExceptHandler(self, node):
        if node.name:
            self._targets(node.name.name)

    def visit_NamedExpr(self, node):
        self._targets(node.target)

    def visit_ImportAlias(self, node):
        self.names.add((node.evaluated_alias or node.evaluated_name).split(".")[0])


def local_names(function: cst.FunctionDef) -> set[str]:
    visitor = _LocalNames(function)
    function.visit(visitor)
    return visitor.names


class _ReferencedNames(cst.CSTVisitor):
    """Every identifier that is a variable (not an attribute, keyword argument or the class's own members)."""

    def __init__(self, skip: set[int]):
        self.skip = skip
        self.names: set[str] = set()

    def visit_Attribute(self, node):
        node.value.visit(self)
        return False

    def visit_Arg(self, node):
        node.value.visit(self)
        return False

    def visit_Name(self, node):
        if id(node) not in self.skip:
            self.names.add(node.value)


def free_names(function: cst.FunctionDef) -> set[str]:
    visitor = _ReferencedNames({id(function.name)})
    function.body.visit(visitor)
    return visitor.names - local_names(function)


# ---------------------------------------------------------------------------------------------------- safety


@dataclass
class Method:
    node: cst.FunctionDef
    self_name: str | None  # None for a staticmethod
    reads: set[str] = field(default_factory=set)
    assigns: set[str] = field(default_factory=set)


class _SelfUses(cst.CSTVisitor):
    """`self.x` reads and writes in a method; any other use of `self` (or of `super()`) makes it unsafe."""

    def __init__(self, self_name: str, class_name: str, method: str):
        self.self_name = self_name
        self.class_name = class_name
        self.method = method
        self.reads: set[str] = set()
        self.assigns: set[str] = set()
        self.problems: list[str] = []
        self._allowed: set[int] = set()

    def visit_Attribute(self, node):
        if isinstance(node.value, cst.Name) and node.value.value in (self.self_name, self.class_name):
            self._allowed.add(id(node.value))
            if node.attr.value.startswith("__"):
                self.problems.append(f"{self.method} uses {node.value.value}.{node.attr.value}")
            self.reads.add(node.attr.value)

    def _assigned(self, target):
        if isinstance(target, cst.Attribute) and isinstance(target.value, cst.Name) \
                and target.value.value == self.self_name:
            self.assigns.add(target.attr.value)
        elif isinstance(target, (cst.Tuple, cst.List)):
            for element in target.elements:
                self._assigned(element.value)

    def visit_AssignTarget(self, node):
        self._assigned(node.target)

    def visit_AnnAssign(self, node):
        self._assigned(node.target)

    def visit_AugAssign(self, node):
        self._assigned(node.target)

    def visit_For(self, node):
        self._assigned(node.target)

    def visit_Name(self, node):
        if id(node) in self._allowed:
            return
        if node.value == self.self_name:
            self.problems.append(f"{self.method} passes `{self.self_name}` around (line uses it as a value)")
        elif node.value == self.class_name:
            self.problems.append(f"{self.method} uses the class {self.class_name} as a value")

    def visit_Call(self, node):
        if isinstance(node.func, cst.Name) and node.func.value == "super":
            self.problems.append(f"{self.method} calls super()")

    def visit_Del(self, node):
        self.problems.append(f"{self.method} deletes attributes")


def _decorator_names(function: cst.FunctionDef) -> list[str]:
    return [(dotted(decorator.decorator if not isinstance(decorator.decorator, cst.Call)
                    else decorator.decorator.func) or "").rsplit(".", 1)[-1] for decorator in function.decorators]


def _is_super_init(statement: cst.BaseStatement) -> bool:
    if isinstance(statement, cst.SimpleStatementLine) and len(statement.body) == 1:
        expression = statement.body[0]
        if isinstance(expression, cst.Expr) and isinstance(expression.value, cst.Call):
            function = expression.value.func
            return (isinstance(function, cst.Attribute) and function.attr.value == "__init__"
                    and isinstance(function.value, cst.Call) and isinstance(function.value.func, cst.Name)
                    and function.value.func.value == "super")
    return False


def _is_docstring(statement: cst.BaseStatement) -> bool:
    return (isinstance(statement, cst.SimpleStatementLine) and len(statement.body) == 1
            and isinstance(statement.body[0], cst.Expr)
            and isinstance(statement.body[0].value, (cst.SimpleString, cst.ConcatenatedString)))


def _contains(node: cst.CSTNode, kinds: tuple[type, ...], stop_at_functions: bool = True) -> bool:
    found = False

    class Finder(cst.CSTVisitor):
        def on_visit(self, inner):
            nonlocal found
            if inner is not node and stop_at_functions and isinstance(inner, (cst.FunctionDef, cst.Lambda)):
                return False
            if isinstance(inner, kinds):
                found = True
            return not found

    node.visit(Finder())
    return found


# ---------------------------------------------------------------------------------------------------- the transform


class _Rewriter(cst.CSTTransformer):
    """`self.x`/`Class.x`/`INSTANCE.x` → module names; rename class attributes inside the class body."""

    def __init__(self, receivers: set[str], names: dict[str, str], helpers: dict[str, str]):
        self.receivers = receivers
        self.names = names
        self.helpers = helpers
        self.used_helpers: set[str] = set()

    def leave_Attribute(self, original_node, updated_node):
        if isinstance(updated_node.value, cst.Name) and updated_node.value.value in self.receivers:
            attribute = updated_node.attr.value
            if attribute in self.names:
                return cst.Name(self.names[attribute])
            if attribute in self.helpers:
                self.used_helpers.add(self.helpers[attribute])
                return cst.Name(self.helpers[attribute])
        return updated_node


def _drop_first_param(function: cst.FunctionDef) -> cst.FunctionDef:
    params = function.params
    if params.posonly_params:
        return function.with_changes(params=params.with_changes(posonly_params=params.posonly_params[1:]))
    return function.with_changes(params=params.with_changes(params=params.params[1:]))


def _without_param(function: cst.FunctionDef, name: str) -> cst.FunctionDef:
    params = function.params
    kept = [param for param in params.params if param.name.value != name]
    kw_kept = [param for param in params.kwonly_params if param.name.value != name]
    if kept:
        kept[-1] = kept[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
    return function.with_changes(params=params.with_changes(params=kept, kwonly_params=kw_kept))


def _with_global(function: cst.FunctionDef, names: list[str]) -> cst.FunctionDef:
    statement = cst.SimpleStatementLine([cst.Global([cst.NameItem(cst.Name(name)) for name in names])])
    body = list(function.body.body)
    position = 1 if body and _is_docstring(body[0]) else 0
    body.insert(position, statement)
    return function.with_changes(body=function.body.with_changes(body=body))


def _make_async(function: cst.FunctionDef) -> cst.FunctionDef:
    return function.with_changes(asynchronous=cst.Asynchronous())


class _YieldFromToLoop(cst.CSTTransformer):
    """`yield from x` is not allowed in an async generator: `for item in x: yield item`."""

    def leave_SimpleStatementLine(self, original_node, updated_node):
        if len(updated_node.body) == 1 and isinstance(updated_node.body[0], cst.Expr):
            value = updated_node.body[0].value
            if isinstance(value, cst.Yield) and isinstance(value.value, cst.From):
                loop = cst.parse_statement("for _item in _iterable:\n    yield _item\n")
                loop = loop.with_changes(iter=value.value.item, leading_lines=updated_node.leading_lines)
                return loop
        return updated_node

    def visit_FunctionDef(self, node):
        return True


def _pick(name: str, taken: set[str]) -> str:
    candidate = name if name not in taken else f"{'_' if name.startswith('_') else ''}agent_{name.lstrip('_')}"
    number = 2
    base = candidate
    while candidate in taken:
        candidate = f"{base}_{number}"
        number += 1
    taken.add(candidate)
    return candidate


def extract(module: cst.Module, location: AgentLocation, asynchronous: bool) -> AgentModule:
    """The module with the agent class extracted into module functions; NotExtractable when unsafe."""
    node = location.class_node
    if node is None:
        raise NotExtractable(f"the class {location.class_name} is defined in another module")
    interface, chain = location.interface, location.chain
    if chain:
        raise NotExtractable(f"{location.class_name} derives from {', '.join(chain)} (an inheritance chain)")
    if interface != "ResponsesAgent":
        raise NotExtractable(f"{location.class_name} is a {interface}, not a ResponsesAgent")

    methods: dict[str, Method] = {}
    class_attributes: dict[str, cst.SimpleStatementLine] = {}
    for statement in node.body.body:
        if isinstance(statement, cst.FunctionDef):
            decorators = _decorator_names(statement)
            unsafe = [name for name in decorators if name in UNSAFE_DECORATORS]
            if unsafe:
                raise NotExtractable(f"{statement.name.value} is decorated with @{unsafe[0]}")
            static = "staticmethod" in decorators
            params = statement.params.posonly_params or statement.params.params
            if not static and not params:
                raise NotExtractable(f"{statement.name.value} takes no self parameter")
            methods[statement.name.value] = Method(statement, None if static else params[0].name.value)
        elif _assignment(statement) is not None:
            class_attributes[_assignment(statement)[0]] = statement
        elif not _is_docstring(statement) and not (
                isinstance(statement, cst.SimpleStatementLine)
                and all(isinstance(small, cst.Pass) for small in statement.body)):
            raise NotExtractable(f"the class body has a statement that is not a method or an attribute "
                                 f"({cst.Module([]).code_for_node(statement).strip().splitlines()[0]})")
    if "predict" not in methods:
        raise NotExtractable(f"{location.class_name} has no predict method of its own")

    # How the class is used elsewhere in the module: only to make the one instance and register it.
    references = _ReferencedNames(set())
    skip = {id(node), id(location.instance_statement)} | {id(statement) for statement in location.set_model_statements}
    for statement in module.body:
        if id(statement) not in skip:
            statement.visit(references)
    if location.class_name in references.names:
        raise NotExtractable(f"the module uses the class {location.class_name} outside its definition")
    if location.instance_statement is not None:
        value = _assignment(location.instance_statement)[1]
        if isinstance(value, cst.Call) and value.args:
            raise NotExtractable(f"{location.class_name}(...) is created with arguments")
    instance_uses = _SelfUses(location.instance_name or "\0", "\0", "module code")
    for statement in module.body:
        if id(statement) not in skip:
            statement.visit(instance_uses)
    # Only what concerns the instance: super() or `del` in another class of the module is that class's business.
    instance = location.instance_name or "\0"
    if [problem for problem in instance_uses.problems if f"`{instance}`" in problem or f" {instance}." in problem] \
            or instance_uses.assigns:
        raise NotExtractable(f"the module uses the instance {location.instance_name} as a value")

    for name, method in methods.items():
        function = method.node
        if name in SETUP_METHODS:
            extra = [param for param in [*function.params.params, *function.params.kwonly_params][1:]
                     if name == "__init__" or param.name.value != "context"]
            if extra or function.params.star_arg not in (cst.MaybeSentinel.DEFAULT, None) \
                    or function.params.star_kwarg is not None:
                raise NotExtractable(f"{name} takes parameters the server cannot supply")
            if _contains(function.body, (cst.Return, cst.Yield)):
                raise NotExtractable(f"{name} returns early")
        if method.self_name is None:
            continue
        uses = _SelfUses(method.self_name, location.class_name, name)
        body = [statement for statement in function.body.body if not (name == "__init__" and _is_super_init(statement))]
        for statement in body:
            statement.visit(uses)
        for decorator in function.decorators:
            decorator.visit(uses)
        if uses.problems:
            raise NotExtractable(uses.problems[0])
        method.reads, method.assigns = uses.reads, uses.assigns
        if name == "load_context":
            context_name = function.params.params[1].name.value if len(function.params.params) > 1 else None
            if context_name and context_name in _names_in(body):
                raise NotExtractable("load_context uses its context for more than literal artifact keys")

    state = set(class_attributes) | {attribute for method in methods.values() for attribute in method.assigns}
    overlap = state & set(methods)
    if overlap:
        raise NotExtractable(f"{sorted(overlap)[0]} is both a method and an attribute")
    unknown = {attribute for method in methods.values() for attribute in method.reads} \
        - state - set(methods) - set(RESPONSES_HELPERS)
    if unknown:
        raise NotExtractable(f"self.{sorted(unknown)[0]} is neither set by the class nor a ResponsesAgent helper "
                             f"(inherited or dynamic)")

    # Names: every identifier the module already uses as a variable is taken.
    own = {id(method.node.name) for method in methods.values()} | {
        id(cst.ensure_type(statement.body[0], (cst.Assign, cst.AnnAssign)).targets[0].target
           if isinstance(statement.body[0], cst.Assign) else statement.body[0].target)
        for statement in class_attributes.values()}
    taken_visitor = _ReferencedNames(own)
    for statement in module.body:
        statement.visit(taken_visitor)
    taken = taken_visitor.names - {location.class_name, location.instance_name or "", "self"}
    setup_locals = set()
    for name in SETUP_METHODS:
        if name in methods:
            setup_locals |= local_names(methods[name].node) - {methods[name].self_name or ""}
    others_free = set().union(*[free_names(method.node) for key, method in methods.items() if key not in SETUP_METHODS])
    module_level = _module_bindings(module, skip)
    clash = setup_locals & (others_free | module_level)
    if clash:
        raise NotExtractable(f"a local variable of __init__/load_context ({sorted(clash)[0]}) would replace "
                             f"a module name once it runs at module level")
    taken |= setup_locals
    names: dict[str, str] = {}
    for attribute in sorted(class_attributes) + sorted(state - set(class_attributes)):
        names[attribute] = _pick(attribute, taken)
    functions: dict[str, str] = {}
    for method in methods:
        if method not in SETUP_METHODS:
            functions[method] = _pick(method, taken)

    receivers = {location.class_name} | ({location.instance_name} if location.instance_name else set())
    rewriter = _Rewriter(receivers | {method.self_name for method in methods.values() if method.self_name},
                         {**names, **functions}, RESPONSES_HELPERS)

    # Outside the class only the instance and the class name refer to the agent (another class's `self` does not).
    outside = _Rewriter(receivers, {**names, **functions}, {})
    predict_calls_stream = "predict_stream" in methods["predict"].reads
    params_kept: list[str] = []
    generated: list[cst.BaseStatement] = []
    for attribute, statement in class_attributes.items():
        small = statement.body[0]
        renamed = _rename_target(small, names[attribute])
        generated.append(statement.with_changes(body=[renamed.visit(_NameRenamer(names))]))
    drop_predict = asynchronous and "predict_stream" in methods
    for name, method in methods.items():
        if name in SETUP_METHODS or (drop_predict and name == "predict"):
            continue
        function = method.node
        if method.self_name is not None:
            function = _drop_first_param(function)
        else:
            function = function.with_changes(decorators=[decorator for decorator in function.decorators
                                                         if _decorator_names(function.with_changes(decorators=[decorator])) != ["staticmethod"]])
        if name in ("predict", "predict_stream"):
            params = {param.name.value for param in [*function.params.params, *function.params.kwonly_params]}
            if "params" in params:
                if "params" in _names_in(function.body.body):
                    params_kept.append(name)
                else:
                    function = _without_param(function, "params")
        global_names = sorted(names[attribute] for attribute in method.assigns)
        function = function.visit(rewriter)
        function = function.with_changes(name=cst.Name(functions[name]))
        if global_names:
            function = _with_global(function, global_names)
        if asynchronous and name in ("predict_stream", "predict"):
            function = _make_async(function).visit(_YieldFromToLoop())
        if generated:  # two blank lines between module-level functions, as between top-level code
            function = function.with_changes(leading_lines=[cst.EmptyLine(), *function.leading_lines])
        generated.append(function)
    if generated:
        header = cst.EmptyLine(comment=cst.Comment(
            f"# The agent, formerly class {location.class_name}: its state is created once, at import, "
            f"and shared by every request."))
        generated[0] = generated[0].with_changes(leading_lines=[*node.leading_lines, header])

    setup: list[cst.BaseStatement] = []
    for name in SETUP_METHODS:
        if name in methods:
            body = [statement for statement in methods[name].node.body.body
                    if not _is_docstring(statement) and not _is_super_init(statement)]
            setup.extend(statement.visit(rewriter) for statement in body)
    if setup:
        setup[0] = setup[0].with_changes(leading_lines=[
            cst.EmptyLine(comment=cst.Comment(
                f"# Formerly {location.class_name}.__init__/load_context: runs once, when the module is imported.")),
            *getattr(setup[0], "leading_lines", ())])

    new_body: list[cst.BaseStatement] = []
    placed_setup = False
    for statement in module.body:
        if statement is node:
            new_body.extend(generated)
            if location.instance_statement is None and not _setup_site(location, statement):
                new_body.extend(setup)
                placed_setup = True
        elif statement is location.instance_statement:
            if not placed_setup:
                new_body.extend(_with_leading(setup, statement))
                placed_setup = True
        elif statement in location.set_model_statements:
            if location.instance_statement is None and not placed_setup:
                new_body.extend(_with_leading(setup, statement))
                placed_setup = True
        else:
            new_body.append(statement.visit(outside) if location.instance_name else statement)
    if not placed_setup:
        new_body.extend(setup)
    needs = [("mlflow.types.responses", helper) for helper in sorted(rewriter.used_helpers)]
    return AgentModule(module.with_changes(body=new_body), "extract", location.class_name, interface, [],
                       functions["predict"] if not drop_predict else None,
                       functions.get("predict_stream"), predict_calls_stream, needs,
                       taken | set(functions.values()) | set(names.values()), params_kept, names, functions)


def _setup_site(location: AgentLocation, statement) -> bool:
    return bool(location.set_model_statements)


def _with_leading(statements: list[cst.BaseStatement], replaced: cst.BaseStatement) -> list[cst.BaseStatement]:
    if not statements:
        return []
    first = statements[0]
    return [first.with_changes(leading_lines=[*replaced.leading_lines, *first.leading_lines]), *statements[1:]]


def _names_in(nodes) -> set[str]:
    visitor = _ReferencedNames(set())
    for node in nodes:
        node.visit(visitor)
    return visitor.names


def _module_bindings(module: cst.Module, skip: set[int]) -> set[str]:
    names: set[str] = set()
    for statement in module.body:
        if id(statement) in skip:
            continue
        if isinstance(statement, (cst.FunctionDef, cst.ClassDef)):
            names.add(statement.name.value)
        elif isinstance(statement, cst.SimpleStatementLine):
            for small in statement.body:
                if isinstance(small, (cst.Import, cst.ImportFrom)) and not isinstance(small.names, cst.ImportStar):
                    names |= {(alias.evaluated_alias or alias.evaluated_name).split(".")[0] for alias in small.names}
                elif isinstance(small, cst.Assign):
                    names |= {target.target.value for target in small.targets if isinstance(target.target, cst.Name)}
                elif isinstance(small, cst.AnnAssign) and isinstance(small.target, cst.Name):
                    names.add(small.target.value)
    return names


class _NameRenamer(cst.CSTTransformer):
    def __init__(self, names: dict[str, str]):
        self.names = names

    def leave_Attribute(self, original_node, updated_node):
        return updated_node.with_changes(attr=original_node.attr)

    def leave_Name(self, original_node, updated_node):
        return updated_node.with_changes(value=self.names.get(updated_node.value, updated_node.value))


def _rename_target(small, name: str):
    if isinstance(small, cst.Assign):
        return small.with_changes(targets=[small.targets[0].with_changes(target=cst.Name(name))])
    return small.with_changes(target=cst.Name(name))


# ---------------------------------------------------------------------------------------------------- wrapper mode


def wrap(module: cst.Module, location: AgentLocation, reason: str, taken: set[str],
         artifact_paths: dict[str, str], model_config: bool = False, create: str | None = None) -> AgentModule:
    """Keep the class; one module-level instance, loaded with its artifacts (and the logged model config,
    which the code step writes to agent_server/model_config.yml), serves every request. `create` is the
    expression that builds it when set_model registered a factory's result (`build_agent()`)."""
    instance = location.instance_name or _pick("AGENT", taken)
    artifacts = ", ".join(f'"{key}": str(Path(__file__).parent / "artifacts" / "{path}")'
                          for key, path in sorted(artifact_paths.items()))
    config = ('ModelConfig(development_config=str(Path(__file__).parent / "model_config.yml")).to_dict()'
              if model_config else "{}")
    load = cst.parse_statement(
        f"{instance}.load_context(PythonModelContext(artifacts={{{artifacts}}}, model_config={config}))\n")
    load = load.with_changes(leading_lines=[cst.EmptyLine(comment=cst.Comment(
        "# Model Serving called load_context once after loading the model; the app does it at import."))])
    create = cst.parse_statement(f"{instance} = {create or location.class_name + '()'}\n")
    new_body: list[cst.BaseStatement] = []
    placed = False
    for statement in module.body:
        if statement in location.set_model_statements:
            if not placed:
                if location.instance_statement is None:
                    new_body.append(create.with_changes(leading_lines=statement.leading_lines))
                new_body.append(load)
                placed = True
            continue
        new_body.append(statement)
    if not placed:
        if location.instance_statement is None:
            new_body.append(create)
        new_body.append(load)
    needs = [("mlflow.pyfunc.model", "PythonModelContext")]
    if artifact_paths or model_config:
        needs.append(("pathlib", "Path"))
    if model_config:
        needs.append(("mlflow.models", "ModelConfig"))
    return AgentModule(module.with_changes(body=new_body), "wrapper", location.class_name, location.interface,
                       [reason], f"{instance}.predict", f"{instance}.predict_stream", False, needs,
                       taken | {instance})


def all_names(module: cst.Module) -> set[str]:
    visitor = _ReferencedNames(set())
    module.visit(visitor)
    return visitor.names
