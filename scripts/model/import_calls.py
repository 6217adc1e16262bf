"""Calls that run when a module is imported and reach the workspace or an LLM.

In Model Serving such a call runs once, while the container loads the model. In an App it runs at every start
of every worker, before the server answers `/health`: a slow workspace makes the app slow to start, and an
unreachable one (or missing grants) stops it from starting at all. Analyze lists them (`import_time_calls`)
and the code check reports them, so the author can make them lazy.

Read from `ast` only (never imported). "At import" means the module body, the bodies of its top-level
if/try/with blocks and of its classes (not their methods), with lambdas and nested functions left out.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from fnmatch import fnmatchcase

from scripts.model.blocking import kind_of
from scripts.model.parsed_modules import ParsedModule, resolved_name
from scripts.model.names import dotted_name

# Constructors and functions that call the workspace while they run (name patterns after import aliases).
WORKSPACE_CALLS = (
    "*UCFunctionToolkit", "*VectorSearchRetrieverTool", "*VectorSearchClient", "*DatabricksFunctionClient",
    "*DatabricksVectorSearch", "*GenieAgent", "*DatabricksMCPClient", "*DatabricksMultiServerMCPClient",
    "*.get_open_ai_client", "*.get_langchain_chat_open_ai_client", "mlflow.get_*", "mlflow.search_*",
    "mlflow.load_prompt", "mlflow.genai.load_prompt", "mlflow.pyfunc.load_model", "mlflow.set_experiment",
    "mlflow.MlflowClient.*", "mlflow.tracking.MlflowClient.*",
)
# The blocking table's kinds that reach the network (an OpenAI client's construction does not).
NETWORK_KINDS = {"http": "the network", "llm-call": "an LLM endpoint", "langchain-call": "an LLM or tool",
                 "database": "a database", "databricks-sdk": "the workspace", "workspace-client": "the workspace"}
COST = ("it runs at every start of every app worker, before the app answers /health: a slow workspace makes "
        "the app slow to start, and an unreachable one or a missing grant stops it from starting")
LAZY = ("build it on first use: move it into a function decorated with `@functools.cache` and call that "
        "function where the value is used (inside predict/predict_stream or a tool), so import does no I/O")


@dataclass(frozen=True)
class ImportCall:
    line: int
    call: str  # the callee as written
    reaches: str  # "the workspace", "an LLM endpoint", ...


def _reaches(call: ast.Call, module: ParsedModule) -> str | None:
    written = dotted_name(call.func) or ""
    name = resolved_name(written, module)
    if any(fnmatchcase(name, pattern) or fnmatchcase(written, pattern) for pattern in WORKSPACE_CALLS):
        return "the workspace"
    return NETWORK_KINDS.get(kind_of(call, module) or "")


class _AtImport(ast.NodeVisitor):
    def __init__(self, module: ParsedModule):
        self.module = module
        self.calls: list[ImportCall] = []

    def visit_FunctionDef(self, node):
        for decorator in node.decorator_list:  # decorators run at import; bodies do not
            self.visit(decorator)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Lambda(self, node):
        return

    def visit_Call(self, node):
        reaches = _reaches(node, self.module)
        if reaches:
            self.calls.append(ImportCall(node.lineno, dotted_name(node.func) or ast.unparse(node.func), reaches))
            return  # `WorkspaceClient().serving_endpoints.get_open_ai_client()` is one site, not two
        self.generic_visit(node)


def import_time_calls(module: ParsedModule) -> list[ImportCall]:
    """Calls in `module` that run at import and reach the workspace, an LLM, the network or a database."""
    finder = _AtImport(module)
    for statement in module.tree.body:
        finder.visit(statement)
    # A chained call is found from its outermost node; keep one site per line and callee.
    seen, calls = set(), []
    for call in sorted(finder.calls, key=lambda site: site.line):
        if (call.line, call.call) not in seen:
            seen.add((call.line, call.call))
            calls.append(call)
    return calls


def model_import_calls(sources) -> list[dict]:
    """analyze.json's `import_time_calls`: each call at import in the model's files (SourceFile objects)."""
    from scripts.model.parsed_modules import parsed_module

    sites = []
    for source in sources:
        if source.tree is None:
            continue
        module = parsed_module(source.tree, source.module or "__main__", source.path, is_package=source.is_package,
                               nodes=source.nodes)
        sites += [source.site(ast.Constant(lineno=call.line), call=call.call, reaches=call.reaches)
                  for call in import_time_calls(module)]
    return sites
