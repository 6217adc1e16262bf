"""Names in the entry module's syntax tree: what a function binds, what code reads, what the module binds.

The extract transform turns methods into module functions and `self.x` into module names; these sets say
which names are taken, so a new name never shadows or replaces one the module already uses.
"""

from __future__ import annotations

import libcst as cst


class AssignmentTargets(cst.CSTVisitor):
    """Hands `bind` what each assignment, annotated or augmented assignment and `for` loop assigns to."""

    def bind(self, target: cst.BaseExpression) -> None:
        raise NotImplementedError

    def visit_AssignTarget(self, node):
        self.bind(node.target)

    def visit_AnnAssign(self, node):
        self.bind(node.target)

    def visit_AugAssign(self, node):
        self.bind(node.target)

    def visit_For(self, node):
        self.bind(node.target)


class _LocalNames(AssignmentTargets):
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

    def bind(self, target: cst.BaseExpression) -> None:
        if isinstance(target, cst.Name):
            self.names.add(target.value)
        elif isinstance(target, (cst.Tuple, cst.List)):
            for element in target.elements:
                self.bind(element.value)
        elif isinstance(target, cst.StarredElement):
            self.bind(target.value)

    def visit_WithItem(self, node):
        if node.asname:
            self.bind(node.asname.name)

    def visit_ExceptHandler(self, node):
        if node.name:
            self.bind(node.name.name)

    def visit_NamedExpr(self, node):
        self.bind(node.target)

    def visit_ImportAlias(self, node):
        self.names.add((node.evaluated_alias or node.evaluated_name).split(".")[0])


def local_names(function: cst.FunctionDef) -> set[str]:
    visitor = _LocalNames(function)
    function.visit(visitor)
    return visitor.names


class ReferencedNames(cst.CSTVisitor):
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
    visitor = ReferencedNames({id(function.name)})
    function.body.visit(visitor)
    return visitor.names - local_names(function)


def names_in(nodes) -> set[str]:
    visitor = ReferencedNames(set())
    for node in nodes:
        node.visit(visitor)
    return visitor.names


def all_names(module: cst.Module) -> set[str]:
    return names_in([module])


def module_bindings(module: cst.Module, skip: set[int]) -> set[str]:
    """Names the module's own top-level statements bind (defs, classes, imports, plain assignments)."""
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


def numbered(name: str, taken: set[str]) -> str:
    """`name`, or `name_2` (then `name_3`, ...) when it is taken; the choice becomes taken."""
    candidate, number = name, 2
    while candidate in taken:
        candidate, number = f"{name}_{number}", number + 1
    taken.add(candidate)
    return candidate


def pick(name: str, taken: set[str]) -> str:
    """`name`, or `agent_name` (then `agent_name_2`, ...) when it is taken; the choice becomes taken."""
    candidate = name if name not in taken else f"{'_' if name.startswith('_') else ''}agent_{name.lstrip('_')}"
    number = 2
    base = candidate
    while candidate in taken:
        candidate = f"{base}_{number}"
        number += 1
    taken.add(candidate)
    return candidate
