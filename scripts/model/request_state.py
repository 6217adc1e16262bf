"""Which state a request writes: `self.<attr>`, class attributes and module globals, found on the request path.

On Model Serving one model instance answers one request at a time, so an agent that keeps per-request values on
`self` (a tool table, the user's client, the last answer) works there. In an App one process serves many
requests at once: a single shared instance would hand one user's values to another. This finder lists every
such write, so analyze can record it, the code step can build the agent per request (or refuse), and the code
check can re-derive both from the app's files.

Pure `ast`, no imports of the agent. The request path starts at the given roots (predict, predict_stream and
their async forms on the agent class, or the app's handlers) and follows, by name: `self.m()` through the
class and its bases (the concrete class first, as Python looks methods up), `super().m()`, the model's module
functions (also imported from code/ modules), methods of module-level instances, and methods passed as values
(`run_sync(AGENT.predict, request)`). A function that receives `self` as an argument sees its writes as the
agent's. Writes inside nested functions count as the enclosing function's (tools built per request).
Which targets of one function name state is read by `request_state_writes.py`.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

from scripts.model.parsed_modules import ParsedModule
from scripts.model.names import dotted_name
from scripts.model.program import ClassKey, Program, assigned_names
from scripts.model.request_state_writes import (Frame, WriteContext, local_aliases, local_names,
                                                parameter_names, record_write, statement_writes)

# Methods that change the container they are called on (list, dict, set, deque) rather than read it.
MUTATORS = {"append", "appendleft", "extend", "extendleft", "insert", "pop", "popleft", "popitem", "remove",
            "clear", "update", "setdefault", "add", "discard", "sort", "reverse", "__setitem__", "__delitem__"}
REQUEST_METHODS = ("predict", "predict_stream", "apredict", "apredict_stream")
SETUP_METHODS = ("__init__", "load_context")
# How far calls are followed: a bound for absurd code, not a limit real agents reach.
MAX_FRAMES = 500

@dataclass(frozen=True)
class StateWrite:
    path: str
    line: int
    attribute: str  # `_tools_dict` for self._tools_dict, `CACHE` for a module global, `Agent.count` for a class's
    kind: str  # "instance" | "class" | "module"
    how: str  # "assign" | "augmented" | "delete" | "item" | "mutation" | "setattr"
    function: str  # the method or function the write is in: `SalesAgent.predict_stream`, `record`
    root: str  # the request-path root that reaches it: `predict_stream`, `stream_handler`
    instance: str | None = None  # `AGENT` when written through a module-level instance's `self`
    guarded: bool = False  # inside `with <a lock>:`: shared on purpose, and synchronized

    def facts(self) -> dict:
        facts = {"path": self.path, "line": self.line, "attribute": self.attribute, "kind": self.kind,
                 "how": self.how, "function": self.function, "root": self.root, "guarded": self.guarded}
        return facts if self.instance is None else {**facts, "instance": self.instance}


@dataclass
class _Scan:
    """What one function's body writes and which functions of the program it hands the request to."""

    writes: list[tuple[ast.AST, str, str, str]] = field(default_factory=list)  # node, attribute, kind, how
    callees: list[Frame] = field(default_factory=list)


def scan(program: Program, frame: Frame) -> _Scan:
    """The writes of one function's body (nested functions included) and the functions it hands the request to."""
    module = program.modules[frame.module]
    function = frame.node
    declared_global = {name for node in ast.walk(function) if isinstance(node, ast.Global) for name in node.names}
    local = local_names(function) - declared_global
    self_names, aliases, shared_aliases = local_aliases(program, module, frame)
    result = _Scan()
    context = WriteContext(program, module, frame, self_names, aliases, declared_global, local, result.writes)
    for node in ast.walk(function):
        statement_writes(context, node)
        if isinstance(node, ast.Call):
            _call(program, module, frame, node, self_names, lambda *write: record_write(context, *write), result)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
            _reference(program, module, frame, node, self_names, result, shared_aliases)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id not in local:
            resolved = program.resolve_function(module, node.id)  # `run_sync(predict, request)`: passed, not called
            if resolved is not None:
                result.callees.append(Frame(resolved[0], resolved[1], node.id))
    return result


def _call(program: Program, module: ParsedModule, frame: Frame, node: ast.Call, self_names: set[str], record,
          result: _Scan) -> None:
    function = node.func
    name = dotted_name(function) or ""
    if isinstance(function, ast.Attribute) and function.attr in MUTATORS:
        record(node, function.value, "mutation")
    if isinstance(function, ast.Name) and function.id in ("setattr", "delattr") and node.args:
        first = node.args[0]
        attribute = node.args[1].value if len(node.args) > 1 and isinstance(node.args[1], ast.Constant) \
            and isinstance(node.args[1].value, str) else "<dynamic>"
        if isinstance(first, ast.Name) and first.id in self_names:
            result.writes.append((node, attribute, frame.receiver, "setattr"))
        else:
            record(node, ast.Attribute(value=first, attr=attribute, ctx=ast.Store()), "setattr")
    # super().m(...): the next class of the receiver's chain after the one defining this method
    if isinstance(function, ast.Attribute) and isinstance(function.value, ast.Call) \
            and dotted_name(function.value.func) == "super" and frame.mro:
        found = program.method(list(frame.mro), function.attr, after=frame.owner)
        if found:
            result.callees.append(Frame(found[0][0], found[1], f"{found[0][1]}.{function.attr}", frame.mro,
                                        found[0], frame.self_names, frame.receiver))
        return
    # A function of the program; `self` passed as an argument keeps its meaning inside.
    resolved = program.resolve_function(module, name) if name else None
    if resolved is not None:
        parameters = parameter_names(resolved[1])
        passed = frozenset(parameters[index] for index, argument in enumerate(node.args)
                           if isinstance(argument, ast.Name) and argument.id in self_names and index < len(parameters))
        result.callees.append(Frame(resolved[0], resolved[1], name.rsplit(".", 1)[-1],
                                    frame.mro if passed else (), frame.owner if passed else None, passed,
                                    frame.receiver))
        return
    # Class.method(self, ...): an explicit call of a base's method
    if isinstance(function, ast.Attribute) and node.args and isinstance(node.args[0], ast.Name) \
            and node.args[0].id in self_names:
        klass = program.resolve_class(module, dotted_name(function.value) or "")
        if klass is not None:
            found = program.method(program.mro(klass), function.attr)
            if found:
                parameters = parameter_names(found[1])
                result.callees.append(Frame(found[0][0], found[1], f"{found[0][1]}.{function.attr}", frame.mro,
                                            found[0], frozenset(parameters[:1]), frame.receiver))


def _reference(program: Program, module: ParsedModule, frame: Frame, node: ast.Attribute, self_names: set[str],
               result: _Scan, shared_aliases: dict[str, str]) -> None:
    """`self.m` / `INSTANCE.m` read as a value or called: the method joins the request path."""
    if not isinstance(node.value, ast.Name):
        return
    if node.value.id in self_names and frame.mro:
        found = program.method(list(frame.mro), node.attr)
        if found:
            parameters = parameter_names(found[1])
            result.callees.append(Frame(found[0][0], found[1], f"{found[0][1]}.{node.attr}", frame.mro, found[0],
                                        frozenset(parameters[:1]), frame.receiver))
        return
    name = shared_aliases.get(node.value.id, node.value.id)
    klass = program.instance_class(module, name)
    if klass is not None:
        found = program.method(program.mro(klass), node.attr)
        if found:
            parameters = parameter_names(found[1])
            shared = name in program.module_names.get(module.name, ())  # else built for this request
            result.callees.append(Frame(found[0][0], found[1], f"{found[0][1]}.{node.attr}",
                                        tuple(program.mro(klass)), found[0], frozenset(parameters[:1]),
                                        f"module:{name}" if shared else "instance"))


def method_frames(program: Program, agent: ClassKey, names: tuple[str, ...],
                  receiver: str = "instance") -> list[Frame]:
    """Frames for the agent's methods `names` (looked up through its bases), `self` being the agent."""
    mro = tuple(program.mro(agent))
    frames = []
    for name in names:
        found = program.method(list(mro), name)
        if found:
            parameters = parameter_names(found[1])
            frames.append(Frame(found[0][0], found[1], f"{found[0][1]}.{name}", mro, found[0],
                                frozenset(parameters[:1]), receiver))
    return frames


def walk(program: Program, roots: list[Frame]) -> list[tuple[Frame, Frame, _Scan]]:
    """Every frame reached from each root, with its scan: (root, frame, scan), each function once per root."""
    reached = []
    for root in roots:
        pending, seen = [root], set()
        while pending and len(seen) < MAX_FRAMES:
            frame = pending.pop()
            key = (id(frame.node), frame.self_names, frame.receiver)
            if key in seen:
                continue
            seen.add(key)
            result = scan(program, frame)
            reached.append((root, frame, result))
            pending.extend(result.callees)
    return reached


def state_writes(program: Program, roots: list[Frame]) -> list[StateWrite]:
    """The writes to instance, class and module state reached from `roots`, one per line and attribute."""
    found: dict[tuple, StateWrite] = {}
    instance_attributes: dict[tuple, set[str]] = {}
    own_roots = {id(root.node): root for root in roots}
    for root, frame, result in walk(program, roots):
        root = own_roots.get(id(frame.node), root)  # a write in predict_stream is predict_stream's, even via predict
        path = program.modules[frame.module].path
        locked = _locked_nodes(frame.node)
        for node, attribute, kind, how in result.writes:
            instance = None
            if kind.startswith("module:"):  # a module-level instance's attribute: shared like a global
                instance = kind.split(":", 1)[1]
                attribute, kind = f"{instance}.{attribute}", "module"
            elif kind == "instance" and how in ("item", "mutation") and frame.mro:
                # Mutating a container only a class body creates (`history = []`) changes it for every instance.
                assigned = instance_attributes.setdefault(frame.mro, _assigned_on_self(program, list(frame.mro)))
                if attribute not in assigned and _class_attribute(program, list(frame.mro), attribute):
                    attribute, kind = f"{frame.mro[0][1]}.{attribute}", "class"
            write = StateWrite(path, node.lineno, attribute, kind, how, frame.qualname,
                               root.qualname.rsplit(".", 1)[-1], instance, id(node) in locked)
            found.setdefault((path, node.lineno, attribute, kind), write)
    return sorted(found.values(), key=lambda write: (write.path, write.line, write.attribute))


def _locked_nodes(function: ast.AST) -> set[int]:
    """Nodes inside `with self.lock:` / `async with LOCK:` (any context named like a lock): the author shares
    that state across requests on purpose and synchronizes it, as faq_agent's conversation memory does."""
    locked: set[int] = set()
    for node in ast.walk(function):
        if isinstance(node, (ast.With, ast.AsyncWith)) and any(
                "lock" in (dotted_name(item.context_expr) or "").rsplit(".", 1)[-1].lower() for item in node.items):
            locked |= {id(inner) for statement in node.body for inner in ast.walk(statement)}
    return locked


def _assigned_on_self(program: Program, mro: list[ClassKey]) -> set[str]:
    names = set()
    for key in mro:
        for method in program.classes[key].body:
            if not isinstance(method, (ast.FunctionDef, ast.AsyncFunctionDef)) or not parameter_names(method):
                continue
            me = parameter_names(method)[0]
            for node in ast.walk(method):
                if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) \
                        and isinstance(node.value, ast.Name) and node.value.id == me:
                    names.add(node.attr)
                elif isinstance(node, ast.Call) and dotted_name(node.func) == "setattr" and len(node.args) > 1 \
                        and isinstance(node.args[1], ast.Constant):
                    names.add(str(node.args[1].value))
    return names


def _class_attribute(program: Program, mro: list[ClassKey], attribute: str) -> bool:
    return any(attribute in assigned_names(node) for key in mro for node in program.classes[key].body)
