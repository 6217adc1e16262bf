"""What building the agent costs: the calls `__init__`/`load_context` make, followed as the request path is.

The code step builds an agent that writes `self.*` per request anew for each request, which is only right when
building it is cheap and has no side effects. Cheap here means: no call the blocking-call table lists (network,
workspace clients, SDK calls, subprocesses, databases, `time.sleep`: `scripts.model.blocking.kind_of`), no file
read, no model load (building a client such as `OpenAI()` is
not a cost: it connects only when called), and no write to a module global or class attribute. Any of those is a cost, with its line.
"""

from __future__ import annotations

import ast
from fnmatch import fnmatchcase

from scripts.model.blocking import kind_of
from scripts.model.names import dotted_name
from scripts.model.program import ClassKey, Program
from scripts.model.request_state import SETUP_METHODS, method_frames, walk

# Calls that read files or load models, matched (fnmatch) against the resolved and the written name.
COST_PATTERNS: tuple[tuple[str, str], ...] = (
    ("open", "file"), ("io.open", "file"), ("*.read_text", "file"), ("*.read_bytes", "file"), ("*.open", "file"),
    ("json.load", "file"), ("yaml.*load", "file"), ("*.read_csv", "file"), ("*.read_parquet", "file"),
    ("pandas.read_*", "file"), ("numpy.load", "file"), ("pickle.load", "model-load"),
    ("cloudpickle.load", "model-load"), ("joblib.load", "model-load"), ("torch.load", "model-load"),
    ("*.load_model", "model-load"), ("*.from_pretrained", "model-load"), ("transformers.pipeline", "model-load"),
    ("sentence_transformers.SentenceTransformer", "model-load"), ("faiss.read_index", "model-load"),
    ("spacy.load", "model-load"), ("tiktoken.get_encoding", "model-load"), ("tiktoken.encoding_for_model", "model-load"),
    ("mlflow.artifacts.download_artifacts", "model-load"), ("*.load_local", "model-load"),
)


def cost_kind(call: ast.Call, program: Program, module_name: str) -> str | None:
    module = program.modules[module_name]
    written = dotted_name(call.func) or ""
    head = written.split(".")[0]
    resolved = module.aliases.get(head, head) + written[len(head):]
    for pattern, kind in COST_PATTERNS:
        if fnmatchcase(resolved, pattern) or fnmatchcase(written, pattern):
            return kind
    kind = kind_of(call, module)
    # Building a sync SDK client (`OpenAI(...)`) opens no connection; only its calls block.
    return None if kind == "sync-client" else kind


def construction_costs(program: Program, agent: ClassKey) -> list[dict]:
    """Every cost of building `agent` (its `__init__`, `load_context`, and what they call or construct)."""
    costs: dict[tuple[str, int, str], dict] = {}
    built, done = {agent}, set()
    queue = method_frames(program, agent, SETUP_METHODS)
    while queue:
        reached, queue = walk(program, queue), []
        for _, frame, result in reached:
            if id(frame.node) in done:
                continue
            done.add(id(frame.node))
            module = program.modules[frame.module]

            def add(node: ast.AST, call: str, kind: str) -> None:
                costs.setdefault((module.path, node.lineno, call), {
                    "path": module.path, "line": node.lineno, "call": call, "kind": kind,
                    "function": frame.qualname})

            for node in ast.walk(frame.node):
                if not isinstance(node, ast.Call):
                    continue
                kind = cost_kind(node, program, frame.module)
                if kind:
                    add(node, dotted_name(node.func) or ast.unparse(node.func), kind)
                klass = program.resolve_class(module, dotted_name(node.func) or "")
                if klass is not None and klass not in built:  # `self.memory = Memory()`: its __init__ runs too
                    built.add(klass)
                    queue += method_frames(program, klass, ("__init__",))
            for node, attribute, kind, _ in result.writes:
                if kind != "instance":  # a global or class attribute changed by building: a side effect
                    add(node, f"{kind.removeprefix('module:')} {attribute}".strip(), "shared-write")
    return sorted(costs.values(), key=lambda cost: (cost["path"], cost["line"]))
