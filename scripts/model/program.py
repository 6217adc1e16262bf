"""The parsed modules of a model (or an app), indexed by the names a request path can call or write.

Shared by the request-state finder (`scripts.model.request_state`) and what building the agent costs
(`scripts.model.construction`): classes with their bases in the program, module-level names, functions and
instances, each found through the imports of the module that names them.
"""

from __future__ import annotations

import ast

from scripts.model.parsed_modules import ParsedModule
from scripts.model.names import dotted_name

ClassKey = tuple[str, str]  # (module, class name)


class Program:
    """The parsed modules of a model (or an app), indexed by what the request path can name."""

    def __init__(self, modules: dict[str, ParsedModule]):
        self.modules = modules
        self.classes: dict[ClassKey, ast.ClassDef] = {}
        self.module_names: dict[str, set[str]] = {}
        for name, module in modules.items():
            bound = set()
            for node in module.tree.body:
                if isinstance(node, ast.ClassDef):
                    self.classes[(name, node.name)] = node
                for target in assigned_names(node):
                    bound.add(target)
            self.module_names[name] = bound

    def resolve_class(self, module: ParsedModule, written: str) -> ClassKey | None:
        if (module.name, written) in self.classes:
            return module.name, written
        target = module.aliases.get(written.split(".")[0])
        if target is None:
            return None
        full = target + written[len(written.split(".")[0]):]
        owner, _, name = full.rpartition(".")
        return (owner, name) if (owner, name) in self.classes else None

    def resolve_function(self, module: ParsedModule, written: str) -> tuple[str, ast.AST] | None:
        """A module-level function of the program named `f` or `mod.f` (through imports)."""
        if written in module.functions and "." not in written:
            return module.name, module.functions[written]
        head = written.split(".")[0]
        target = module.aliases.get(head)
        if target is None:
            return None
        owner, _, name = (target + written[len(head):]).rpartition(".")
        if owner in self.modules and name in self.modules[owner].functions and "." not in name:
            return owner, self.modules[owner].functions[name]
        return None

    def resolve_global(self, module: ParsedModule, written: str) -> tuple[str, str] | None:
        """The module-level name `NAME` (or `mod.NAME`, or an imported name) refers to: (module, name)."""
        head = written.split(".")[0]
        if "." not in written and head in self.module_names.get(module.name, ()):
            return module.name, head
        target = module.aliases.get(head)
        if target is None:
            return None
        owner, _, name = (target + written[len(head):]).rpartition(".")
        if owner in self.modules and name in self.module_names.get(owner, ()):
            return owner, name
        return None

    def mro(self, key: ClassKey, seen: frozenset = frozenset()) -> list[ClassKey]:
        """The class and its bases that are in the program, in (approximately) Python's lookup order."""
        order = [key]
        module = self.modules[key[0]]
        for base in self.classes[key].bases:
            parent = self.resolve_class(module, dotted_name(base) or "")
            if parent and parent not in seen and parent != key:
                order += [item for item in self.mro(parent, seen | {key}) if item not in order]
        return order

    def method(self, mro: list[ClassKey], name: str, after: ClassKey | None = None) -> tuple[ClassKey, ast.AST] | None:
        start = mro.index(after) + 1 if after in mro else 0
        for key in mro[start:]:
            for node in self.classes[key].body:
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name:
                    return key, node
        return None

    def instance_class(self, module: ParsedModule, name: str) -> ClassKey | None:
        """The class of `name` when it holds an instance built from a class of the program: a module-level one
        (`AGENT = Agent()`), or one a handler builds per request (`scripts.model.parsed_modules.per_request_instances`)."""
        written = module.instances.get(name)
        return self.resolve_class(module, written) if written else None


def assigned_names(node: ast.AST) -> list[str]:
    """The plain names an assignment statement binds (`a = b = 1`, `a, b = ...`, `a: int = 1`, `a += 1`)."""
    targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
        node, (ast.AnnAssign, ast.AugAssign)) else []
    names = []
    for target in targets:
        for element in target.elts if isinstance(target, (ast.Tuple, ast.List)) else [target]:
            if isinstance(element, ast.Name):
                names.append(element.id)
    return names
