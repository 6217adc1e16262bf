"""A pickled python_model (`python_model.pkl`): which class it is an instance of, and which attributes it holds.

The pickle is never loaded: unpickling runs whatever the file says, and the harness reads models it does not
trust. `pickletools.genops` lists the opcodes without running any, and a small symbolic stack follows the
ones that build objects (globals, tuples, dicts, NEWOBJ/REDUCE, BUILD), so the top-level object's class and
the keys of its state (its `self.x` attributes) come out. A class cloudpickle stored by value (defined in
the logging notebook) is named by the first string of its skeleton's arguments.
"""

from __future__ import annotations

import pickletools
from dataclasses import dataclass, field
from pathlib import Path

STRINGS = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "SHORT_BINSTRING", "BINSTRING", "STRING"}
MEMO_PUT = {"PUT", "BINPUT", "LONG_BINPUT"}
MEMO_GET = {"GET", "BINGET", "LONG_BINGET"}
TO_MARK = {"TUPLE": tuple, "LIST": list, "DICT": dict, "FROZENSET": frozenset}
OBJECT_BUILDERS = {"NEWOBJ", "REDUCE", "NEWOBJ_EX", "OBJ", "BUILD"}


class PickleNotRead(Exception):
    """The file is not a pickle these opcodes describe (truncated, another format)."""


@dataclass
class Global:
    module: str
    name: str


@dataclass
class Built:
    """An object the pickle creates: what it calls (a class, or a function like a skeleton maker), its state."""
    callee: object
    arguments: object
    state: object = None
    items: dict = field(default_factory=dict)


class _Mark:
    pass


MARK = _Mark()


def _pop_to_mark(stack: list) -> list:
    for index in range(len(stack) - 1, -1, -1):
        if stack[index] is MARK:
            items = stack[index + 1:]
            del stack[index:]
            return items
    raise PickleNotRead("MARK missing")


def _step(name: str, argument, stack: list, memo: dict) -> None:
    if name in STRINGS:
        stack.append(argument if isinstance(argument, str) else None)
    elif name == "STACK_GLOBAL":
        qualname, module = stack.pop(), stack.pop()
        stack.append(Global(str(module), str(qualname)))
    elif name in ("GLOBAL", "INST"):
        module, _, qualname = str(argument).partition(" ")
        stack.append(Global(module, qualname))
    elif name == "MEMOIZE":
        memo[len(memo)] = stack[-1]
    elif name in MEMO_PUT:
        memo[argument] = stack[-1]
    elif name in MEMO_GET:
        stack.append(memo.get(argument))
    elif name == "MARK":
        stack.append(MARK)
    elif name in TO_MARK:
        items = _pop_to_mark(stack)
        stack.append(dict(zip(items[::2], items[1::2])) if name == "DICT" else tuple(items))
    elif name in ("EMPTY_DICT", "EMPTY_LIST", "EMPTY_TUPLE", "EMPTY_SET"):
        stack.append({} if name == "EMPTY_DICT" else ())
    elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
        count = int(name[-1])
        items = tuple(stack[-count:])
        del stack[-count:]
        stack.append(items)
    elif name == "SETITEM":
        value, key = stack.pop(), stack.pop()
        if isinstance(stack[-1], dict):
            stack[-1][key] = value
    elif name == "SETITEMS":
        items = _pop_to_mark(stack)
        if isinstance(stack[-1], dict):
            stack[-1].update(zip(items[::2], items[1::2]))
    elif name in ("APPENDS", "ADDITEMS"):
        _pop_to_mark(stack)
    elif name == "APPEND":
        stack.pop()
    elif name in OBJECT_BUILDERS:
        _build_object(name, stack)
    elif name == "POP":
        stack.pop()
    elif name == "POP_MARK":
        _pop_to_mark(stack)
    elif name == "DUP":
        stack.append(stack[-1])
    elif name in ("PROTO", "FRAME", "STOP", "PERSID", "BINPERSID", "NEXT_BUFFER", "READONLY_BUFFER"):
        if name == "BINPERSID":
            stack.pop()
            stack.append(None)
        elif name == "PERSID":
            stack.append(None)
    else:  # numbers, bytes, None, booleans: values whose content does not matter here
        stack.append(None)


def _build_object(name: str, stack: list) -> None:
    """The opcodes that create an object (a call of its class or maker) and set its state."""
    if name == "NEWOBJ_EX":
        stack.pop()  # the keyword arguments
    if name in ("NEWOBJ", "REDUCE", "NEWOBJ_EX"):
        arguments, callee = stack.pop(), stack.pop()
        stack.append(Built(callee, arguments))
    elif name == "OBJ":
        items = _pop_to_mark(stack)
        stack.append(Built(items[0] if items else None, tuple(items[1:])))
    elif name == "BUILD":
        state = stack.pop()
        if isinstance(stack[-1], Built):
            stack[-1].state = state


def _class_name(value) -> tuple[str | None, str | None]:
    """(module, class) of what an object was created from: a global, or a by-value skeleton's name."""
    if isinstance(value, Global):
        if value.name in ("_reconstructor", "__newobj__", "__newobj_ex__"):
            return None, None
        return value.module, value.name
    if isinstance(value, Built):  # cloudpickle: _make_skeleton_class(type, "MyAgent", bases, ...)
        strings = [item for item in value.arguments or () if isinstance(item, str)] \
            if isinstance(value.arguments, tuple) else []
        return None, strings[0] if strings else None
    return None, None


@dataclass(frozen=True)
class PickledAgent:
    module: str | None  # None when cloudpickle stored the class by value
    class_name: str | None
    attributes: list[str]  # the state's keys: what `self.x` the instance held when it was logged


def read_pickled_agent(path: Path) -> PickledAgent:
    stack: list = []
    memo: dict = {}
    try:
        for opcode, argument, _ in pickletools.genops(path.read_bytes()):
            _step(opcode.name, argument, stack, memo)
    except (ValueError, IndexError, KeyError, TypeError) as error:
        raise PickleNotRead(str(error)) from error
    top = stack[-1] if stack else None
    if not isinstance(top, Built):
        raise PickleNotRead("the pickle's top-level value is not an object")
    callee = top.callee
    if isinstance(callee, Global) and callee.name == "_reconstructor" and isinstance(top.arguments, tuple):
        callee = top.arguments[0] if top.arguments else None  # copyreg._reconstructor(cls, base, state)
    module, name = _class_name(callee)
    state = top.state[0] if isinstance(top.state, tuple) and top.state else top.state
    attributes = sorted(key for key in state if isinstance(key, str)) if isinstance(state, dict) else []
    return PickledAgent(module, name, attributes)


# ---------------------------------------------------------------------------------------------------- the class in code/


def rebuilt_attributes(agent: dict) -> tuple[set[str], bool]:
    """The `self.x` that constructing the class and loading it set, and whether `Class()` takes no arguments."""
    methods = agent["methods"]
    rebuilt = set(methods["__init__"].get("attributes") or []) | set(methods["load_context"].get("attributes") or [])
    return rebuilt, methods["__init__"].get("constructible", True)


def pickled_agent_class(pickle_path: Path, code_sources: list) -> tuple[dict | None, PickledAgent | None, str | None]:
    """analyze's agent_class for the pickled instance's class when code/ defines it, the pickle's facts, and
    why the pickle could not be read (None when it could)."""
    import ast

    from scripts.model.agent_class import AgentClassSearch, ClassIndex, classes_in, describe_agent_class

    try:
        pickled = read_pickled_agent(pickle_path)
    except (OSError, PickleNotRead) as error:
        return None, None, str(error)
    index = ClassIndex(None, code_sources)
    site = index.lookup_in_module(pickled.module, pickled.class_name or "") if pickled.module else None
    if site is None and pickled.class_name:  # stored by value: the class of that name in code/, if one
        sites = [found for source in code_sources for name, found in classes_in(source).items()
                 if name == pickled.class_name]
        site = sites[0] if len(sites) == 1 else None
    if site is None:
        return None, pickled, None
    agent = describe_agent_class(index, AgentClassSearch(site, "pickle", [], [site.node.name]))
    init = next((node for node in site.node.body if isinstance(node, ast.FunctionDef) and node.name == "__init__"),
                None)
    required = len(init.args.args) - 1 - len(init.args.defaults) + len(
        [default for default in init.args.kw_defaults if default is None]) if init else 0
    agent["methods"]["__init__"]["constructible"] = required <= 0
    rebuilt, constructible = rebuilt_attributes(agent)
    held = [name for name in pickled.attributes]
    agent["pickle"] = {"module": pickled.module, "attributes": held,
                       "not_rebuilt": sorted(set(held) - rebuilt), "constructible": constructible}
    agent["methods"]["__init__"].pop("constructible")
    return agent, pickled, None


def pickled_findings(findings, agent: dict | None, pickled: PickledAgent | None, unreadable: str | None,
                     hint: str) -> None:
    """ANA053 (served in wrapper mode by constructing the class), or ANA054 (the state cannot be rebuilt)."""
    where = "python_model.pkl"
    if agent is None:
        held = f"; the pickle holds a {pickled.class_name} with attributes {', '.join(pickled.attributes) or 'none'}" \
            if pickled and pickled.class_name else f"; the pickle could not be read ({unreadable})" if unreadable else ""
        findings.add("ANA001", "error", "MLmodel",
                     "this is a pickled model (python_model.pkl, no model_code_path): its agent class exists only "
                     f"as pickled bytes, so there is no source file to migrate{held}{hint}",
                     "take the agent's source from code/ if the class is defined there, or ask the author for the "
                     "Python file the model was logged from; then log it as models-from-code "
                     "(`mlflow.pyfunc.log_model(python_model=\"agent.py\", ...)`) or put it in the app by hand")
        return
    facts = agent["pickle"]
    held = ", ".join(facts["attributes"]) or "none"
    if facts["constructible"] and not facts["not_rebuilt"]:
        findings.add("ANA053", "warning", where,
                     f"a pickled {agent['name']} ({agent['path']}:{agent['line']}); the pickle held the attributes "
                     f"{held}, and {agent['name']}() with load_context sets every one of them, so the code step "
                     "builds the agent that way (wrapper mode) instead of loading the pickle",
                     "check that nothing changed those attributes between creating the agent and logging it (the "
                     "app gets the values __init__ sets); log the agent from code when you can")
        return
    why = (f"the pickle held {', '.join(facts['not_rebuilt'])}, which neither __init__ nor load_context sets"
           if facts["not_rebuilt"] else f"{agent['name']}.__init__ takes arguments the app cannot know")
    findings.add("ANA054", "error", where,
                 f"a pickled {agent['name']} ({agent['path']}:{agent['line']}) whose state cannot be rebuilt by "
                 f"constructing the class: {why} (the pickle held the attributes {held})",
                 "set those attributes in __init__ (or load_context) of the class's source, log the agent again from "
                 "code (`mlflow.pyfunc.log_model(python_model=\"agent.py\", ...)`), and download that version")
