"""Which state one function on the request path writes: the targets of its assignments, deletions and mutations
that name the agent (`self`, an alias of it), a class or a module global. `request_state.py` follows the request
from function to function; this reads what each of them writes.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from scripts.model.parsed_modules import ParsedModule
from scripts.model.names import dotted_name
from scripts.model.program import ClassKey, Program


@dataclass(frozen=True)
class Frame:
    """One function on the request path, and who `self` is in it."""

    module: str
    node: ast.AST
    qualname: str
    mro: tuple[ClassKey, ...] = ()  # the receiver's class and bases; () in a plain function
    owner: ClassKey | None = None  # the class defining this method (for super())
    self_names: frozenset[str] = frozenset()
    receiver: str = "instance"  # "instance" (the agent) | "module:NAME" (a module-level instance)


def parameter_names(function: ast.AST) -> list[str]:
    args = function.args
    return [argument.arg for argument in args.posonlyargs + args.args]


def local_names(function: ast.AST) -> set[str]:
    names = set(parameter_names(function)) | {argument.arg for argument in function.args.kwonlyargs}
    for node in ast.walk(function):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node is not function:
            names.add(node.name)
            names |= {argument.arg for argument in node.args.args}
    return names


def local_aliases(program: Program, module: ParsedModule, frame: Frame) -> tuple[set[str], dict, dict]:
    """Local names assigned once that stand for state: `agent = self` (another name of the agent), `tools =
    self._tools` (its container: writes through it are writes to the agent), `agent = AGENT` (the module-level
    instance)."""
    self_names = set(frame.self_names)
    assigned_count: dict[str, int] = {}
    for node in ast.walk(frame.node):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            assigned_count[node.id] = assigned_count.get(node.id, 0) + 1
    aliases: dict[str, str] = {}
    shared_aliases: dict[str, str] = {}
    for node in ast.walk(frame.node):
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
                and assigned_count.get(node.targets[0].id) == 1):
            continue
        name, value = node.targets[0].id, node.value
        if isinstance(value, ast.Name) and value.id in self_names:
            self_names.add(name)
        elif isinstance(value, ast.Attribute) and isinstance(value.value, ast.Name) and value.value.id in frame.self_names:
            aliases[name] = value.attr
        elif isinstance(value, ast.Name) and value.id in module.instances \
                and value.id in program.module_names.get(module.name, ()):
            shared_aliases[name] = value.id
    return self_names, aliases, shared_aliases


@dataclass
class WriteContext:
    """What one function's names mean: the agent under other names, containers of the agent, globals, locals."""

    program: Program
    module: ParsedModule
    frame: Frame
    self_names: set[str]
    aliases: dict[str, str]
    declared_global: set[str]
    local: set[str]
    writes: list  # (node, attribute, kind, how), the scan's list


def record_write(context: WriteContext, node: ast.AST, target: ast.AST, how: str) -> None:
    """The write `target` names, if it is state: the agent's, a class's or a module's."""
    program, module, frame, writes = context.program, context.module, context.frame, context.writes
    self_names, aliases = context.self_names, context.aliases
    depth, root, first = 0, target, None
    while isinstance(root, (ast.Attribute, ast.Subscript)):
        first, root, depth = root, root.value, depth + 1
    if how in ("mutation", "setattr"):
        depth += 1  # the object the target names is itself changed
    deeper = how if how in ("mutation", "setattr") else "item" if isinstance(target, ast.Subscript) else "mutation"
    shown = how if depth <= 1 and how not in ("mutation", "setattr") else deeper  # `self.x = ...` vs `self.x[k] = ...`
    if isinstance(root, ast.Call) and dotted_name(root.func) == "type" and root.args \
            and isinstance(root.args[0], ast.Name) and root.args[0].id in self_names:
        if isinstance(first, ast.Attribute) and frame.mro:  # type(self).count += 1: the class's own
            writes.append((node, f"{frame.mro[0][1]}.{first.attr}", "class", shown))
        return
    if not isinstance(root, ast.Name):
        return
    if root.id in self_names and isinstance(first, ast.Attribute):
        if first.attr == "__class__" and depth >= 2 and frame.mro:
            writes.append((node, f"{frame.mro[0][1]}.{_attribute_after(target, first)}", "class", shown))
        else:
            writes.append((node, first.attr, frame.receiver, shown))
    elif root.id in aliases and depth >= 1:  # the alias is the container: any depth changes its contents
        writes.append((node, aliases[root.id], frame.receiver, deeper))
    elif depth == 0 and root.id in context.declared_global:
        writes.append((node, root.id, "module", shown))
    elif depth >= 1 and root.id not in context.local:
        klass = program.resolve_class(module, root.id)
        if klass is not None:
            writes.append((node, f"{klass[1]}.{_attribute_after(target, root)}", "class", shown))
            return
        found = program.resolve_global(module, root.id)
        if found is not None:  # `CACHE[k] = v`: the global's contents
            writes.append((node, found[1], "module", deeper))
            return
        found = _module_attribute(program, module, dotted_name(target) or root.id)
        if found is not None:  # `helpers.COUNT = 1` (an assignment), `helpers.STATS[k] = v` (its contents)
            writes.append((node, found[1], "module", how if depth == 1 and how not in (
                "mutation", "setattr") else deeper))


def record_targets(context: WriteContext, node: ast.AST, target: ast.AST, how: str) -> None:
    """Each name an assignment target unpacks to (`a, (b, *c) = ...`), as its own write."""
    if isinstance(target, (ast.Tuple, ast.List)):
        for element in target.elts:
            record_targets(context, node, element, how)
    elif isinstance(target, ast.Starred):
        record_targets(context, node, target.value, how)
    else:
        record_write(context, node, target, how)


def statement_writes(context: WriteContext, node: ast.AST) -> None:
    """The writes of one assignment, `for`, `with` or `del` statement."""
    if isinstance(node, ast.Assign):
        for target in node.targets:
            record_targets(context, node, target, "assign")
    elif isinstance(node, (ast.AnnAssign, ast.AugAssign)) and (
            isinstance(node, ast.AugAssign) or node.value is not None):
        record_targets(context, node, node.target, "augmented" if isinstance(node, ast.AugAssign) else "assign")
    elif isinstance(node, (ast.For, ast.AsyncFor)):
        record_targets(context, node, node.target, "assign")
    elif isinstance(node, (ast.With, ast.AsyncWith)):
        for item in node.items:
            if item.optional_vars is not None:
                record_targets(context, node, item.optional_vars, "assign")
    elif isinstance(node, ast.Delete):
        for target in node.targets:
            record_targets(context, node, target, "delete")


def _attribute_after(target: ast.AST, root: ast.Name) -> str:
    node = target
    while isinstance(node, (ast.Attribute, ast.Subscript)) and node.value is not root:
        node = node.value
    return node.attr if isinstance(node, ast.Attribute) else "?"


def _module_attribute(program: Program, module: ParsedModule, written: str) -> tuple[str, str] | None:
    """`mod.NAME...` where `mod` is a module of the program and NAME one of its module-level names."""
    parts = written.split(".")
    target = module.aliases.get(parts[0])
    if target in program.modules and len(parts) > 1 and parts[1] in program.module_names.get(target, ()):
        return target, f"{target}.{parts[1]}"
    return None
