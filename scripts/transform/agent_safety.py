"""Whether the agent class can become module functions without changing what it does (extract mode).

Each check raises NotExtractable with the reason, which the code step reports when it falls back to
wrapper mode: a decorator that changes what a method is, `self` passed around, `super()`, dynamic or
inherited attributes, a class used as a value, arguments the server cannot supply.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst

from scripts.transform.agent_names import AssignmentTargets, ReferencedNames, names_in
from scripts.transform.location import AgentLocation, assignment
from scripts.transform.modules import dotted

SETUP_METHODS = ("__init__", "load_context")
UNSAFE_DECORATORS = ("classmethod", "property", "setter", "getter", "deleter", "cached_property", "abstractmethod")


class NotExtractable(Exception):
    """Why the class cannot be turned into module functions safely: the reason goes into the report."""


@dataclass
class Method:
    node: cst.FunctionDef
    self_name: str | None  # None for a staticmethod
    reads: set[str] = field(default_factory=set)
    assigns: set[str] = field(default_factory=set)


class SelfUses(AssignmentTargets):
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

    def bind(self, target):
        if isinstance(target, cst.Attribute) and isinstance(target.value, cst.Name) \
                and target.value.value == self.self_name:
            self.assigns.add(target.attr.value)
        elif isinstance(target, (cst.Tuple, cst.List)):
            for element in target.elements:
                self.bind(element.value)

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


def decorator_names(function: cst.FunctionDef) -> list[str]:
    return [(dotted(decorator.decorator if not isinstance(decorator.decorator, cst.Call)
                    else decorator.decorator.func) or "").rsplit(".", 1)[-1] for decorator in function.decorators]


def is_super_init(statement: cst.BaseStatement) -> bool:
    if isinstance(statement, cst.SimpleStatementLine) and len(statement.body) == 1:
        expression = statement.body[0]
        if isinstance(expression, cst.Expr) and isinstance(expression.value, cst.Call):
            function = expression.value.func
            return (isinstance(function, cst.Attribute) and function.attr.value == "__init__"
                    and isinstance(function.value, cst.Call) and isinstance(function.value.func, cst.Name)
                    and function.value.func.value == "super")
    return False


def is_docstring(statement: cst.BaseStatement) -> bool:
    return (isinstance(statement, cst.SimpleStatementLine) and len(statement.body) == 1
            and isinstance(statement.body[0], cst.Expr)
            and isinstance(statement.body[0].value, (cst.SimpleString, cst.ConcatenatedString)))


def contains(node: cst.CSTNode, kinds: tuple[type, ...], stop_at_functions: bool = True) -> bool:
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


def class_members(node: cst.ClassDef, class_name: str) -> tuple[dict[str, Method], dict[str, cst.SimpleStatementLine]]:
    """The class body as methods and class attributes; anything else in it is a reason not to extract."""
    methods: dict[str, Method] = {}
    attributes: dict[str, cst.SimpleStatementLine] = {}
    for statement in node.body.body:
        if isinstance(statement, cst.FunctionDef):
            decorators = decorator_names(statement)
            unsafe = [name for name in decorators if name in UNSAFE_DECORATORS]
            if unsafe:
                raise NotExtractable(f"{statement.name.value} is decorated with @{unsafe[0]}")
            static = "staticmethod" in decorators
            params = statement.params.posonly_params or statement.params.params
            if not static and not params:
                raise NotExtractable(f"{statement.name.value} takes no self parameter")
            methods[statement.name.value] = Method(statement, None if static else params[0].name.value)
        elif assignment(statement) is not None:
            attributes[assignment(statement)[0]] = statement
        elif not is_docstring(statement) and not (
                isinstance(statement, cst.SimpleStatementLine)
                and all(isinstance(small, cst.Pass) for small in statement.body)):
            raise NotExtractable(f"the class body has a statement that is not a method or an attribute "
                                 f"({cst.Module([]).code_for_node(statement).strip().splitlines()[0]})")
    if "predict" not in methods:
        raise NotExtractable(f"{class_name} has no predict method of its own")
    return methods, attributes


def check_module_uses(module: cst.Module, location: AgentLocation, skip: set[int]) -> None:
    """Outside its definition the module only creates the one instance and registers it."""
    references = ReferencedNames(set())
    instance_uses = SelfUses(location.instance_name or "\0", "\0", "module code")
    for statement in module.body:
        if id(statement) not in skip:
            statement.visit(references)
            if location.instance_name in references.names:
                statement.visit(instance_uses)
    if location.class_name in references.names:
        raise NotExtractable(f"the module uses the class {location.class_name} outside its definition")
    if location.instance_statement is not None:
        value = assignment(location.instance_statement)[1]
        if isinstance(value, cst.Call) and value.args:
            raise NotExtractable(f"{location.class_name}(...) is created with arguments")
    # Only what concerns the instance: super() or `del` in another class of the module is that class's business.
    instance = location.instance_name or "\0"
    if [problem for problem in instance_uses.problems if f"`{instance}`" in problem or f" {instance}." in problem] \
            or instance_uses.assigns:
        raise NotExtractable(f"the module uses the instance {location.instance_name} as a value")


def check_methods(methods: dict[str, Method], class_name: str) -> None:
    """Setup methods the server can run once at import; every method's `self` used only as `self.x`."""
    for name, method in methods.items():
        function = method.node
        if name in SETUP_METHODS:
            extra = [param for param in [*function.params.params, *function.params.kwonly_params][1:]
                     if name == "__init__" or param.name.value != "context"]
            if extra or function.params.star_arg not in (cst.MaybeSentinel.DEFAULT, None) \
                    or function.params.star_kwarg is not None:
                raise NotExtractable(f"{name} takes parameters the server cannot supply")
            if contains(function.body, (cst.Return, cst.Yield)):
                raise NotExtractable(f"{name} returns early")
        if method.self_name is None:
            continue
        uses = SelfUses(method.self_name, class_name, name)
        body = [statement for statement in function.body.body if not (name == "__init__" and is_super_init(statement))]
        for statement in body:
            statement.visit(uses)
        for decorator in function.decorators:
            decorator.visit(uses)
        if uses.problems:
            raise NotExtractable(uses.problems[0])
        method.reads, method.assigns = uses.reads, uses.assigns
        if name == "load_context":
            context_name = function.params.params[1].name.value if len(function.params.params) > 1 else None
            if context_name and context_name in names_in(body):
                raise NotExtractable("load_context uses its context for more than literal artifact keys")


def check_state(methods: dict[str, Method], attributes: dict, helpers) -> set[str]:
    """The attributes that become module state; every `self.x` read must be one, a method or a helper."""
    state = set(attributes) | {attribute for method in methods.values() for attribute in method.assigns}
    overlap = state & set(methods)
    if overlap:
        raise NotExtractable(f"{sorted(overlap)[0]} is both a method and an attribute")
    unknown = {attribute for method in methods.values() for attribute in method.reads} \
        - state - set(methods) - set(helpers)
    if unknown:
        raise NotExtractable(f"self.{sorted(unknown)[0]} is neither set by the class nor a ResponsesAgent helper "
                             f"(inherited or dynamic)")
    return state
