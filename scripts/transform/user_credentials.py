"""`ModelServingUserCredentials` becomes the app's per-request user client (agent_server/user_auth.py).

On Model Serving, `WorkspaceClient(credentials_strategy=ModelServingUserCredentials())` acts as the calling
user. Outside Model Serving the strategy falls back to the default credentials, which in an App are the app's
own service principal (ARCHITECTURE §8): kept as is, every user would run as the app, silently. In an App the
user's token arrives with each request (`x-forwarded-access-token`), so the client must be built from it for
that request only.

The rewrite: `WorkspaceClient(credentials_strategy=<the strategy>())`, with nothing else but that argument,
becomes `user_workspace_client()` when it is built inside a function on the request path (not `__init__` or
`load_context`, not module level) and not stored on `self` or in a module global. This covers the strategy
under any import path or alias, and a client passed on to `DatabricksOpenAI(workspace_client=...)`,
`ChatDatabricks(workspace_client=...)` and the like, since those take the WorkspaceClient built here. Every
other use (the strategy given to another constructor, kept in a variable, built once at import, stored on the
agent, VectorSearchClient's MODEL_SERVING_USER_CREDENTIALS) is left as it is, with a marker comment on its line
and a site the code step reports as an error: an automatic rewrite there could act as the wrong identity.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst
from libcst.codemod import CodemodContext
from libcst.codemod.visitors import AddImportsVisitor, RemoveImportsVisitor
from libcst.metadata import MetadataWrapper, PositionProvider

from scripts.core.findings import Finding
from scripts.transform.modules import dotted

STRATEGY = "ModelServingUserCredentials"
STRATEGY_MODULES = ("databricks_ai_bridge", "databricks_ai_bridge.model_serving_obo_credential_strategy",
                    "databricks.sdk.credentials_provider")
VECTOR_SEARCH_USER = "MODEL_SERVING_USER_CREDENTIALS"  # databricks-vectorsearch's CredentialStrategy member
CLIENT_CLASSES = ("WorkspaceClient", "databricks.sdk.WorkspaceClient")
STRATEGY_KEYWORDS = ("credentials_strategy", "credential_strategy")
USER_CLIENT = ("agent_server.user_auth", "user_workspace_client")
NOT_REQUEST_PATH = ("__init__", "load_context")
MARKER = "# MIGRATE USER-AUTH: not rewritten automatically:"


@dataclass
class CredentialSite:
    line: int  # in the module as it was given
    rewritten: bool
    why: str  # what was done, or why it was not

    def as_dict(self) -> dict:
        return {"line": self.line, "rewritten": self.rewritten, "why": self.why}


@dataclass
class CredentialRewrite:
    code: str
    sites: list[CredentialSite] = field(default_factory=list)


def strategy_names(module: cst.Module) -> set[str]:
    """The dotted names this module reaches the strategy by: `ModelServingUserCredentials`, an alias of it,
    `auth.ModelServingUserCredentials` for `from databricks.sdk import credentials_provider as auth`, ..."""
    names: set[str] = set()
    for statement in module.body:
        for small in statement.body if isinstance(statement, cst.SimpleStatementLine) else []:
            if isinstance(small, cst.ImportFrom) and not isinstance(small.names, cst.ImportStar):
                source = dotted(small.module) if small.module else None
                for alias in small.names:
                    bound = dotted(alias.asname.name) if alias.asname else dotted(alias.name)
                    imported = f"{source}.{dotted(alias.name)}"
                    if source in STRATEGY_MODULES and dotted(alias.name) == STRATEGY:
                        names.add(bound)
                    elif imported in STRATEGY_MODULES:
                        names.add(f"{bound}.{STRATEGY}")
            elif isinstance(small, cst.Import):
                for alias in small.names:
                    full = dotted(alias.name)
                    if full in STRATEGY_MODULES:
                        names.add(f"{dotted(alias.asname.name) if alias.asname else full}.{STRATEGY}")
    return names


class _Rewriter(cst.CSTTransformer):
    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self, names: set[str]):
        self.names = names
        self.functions: list[str] = []
        self.statement_targets: list[list[str]] = []
        self.sites: list[CredentialSite] = []
        self.unsafe_lines: list[str] = []  # markers for the statement being left
        self.globals: set[str] = set()
        self.handled: set[int] = set()

    def _is_strategy_call(self, node: cst.BaseExpression) -> bool:
        return isinstance(node, cst.Call) and dotted(node.func) in self.names

    def _line(self, node: cst.CSTNode) -> int:
        return self.get_metadata(PositionProvider, node).start.line

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self.functions.append(node.name.value)

    def leave_FunctionDef(self, original, updated):
        self.functions.pop()
        return updated

    def visit_Global(self, node: cst.Global) -> None:
        self.globals.update(item.name.value for item in node.names)

    def visit_SimpleStatementLine(self, node: cst.SimpleStatementLine) -> None:
        targets = []
        for small in node.body:
            for target in getattr(small, "targets", []) or []:
                targets.append(cst.Module([]).code_for_node(target.target))
            if isinstance(small, (cst.AnnAssign, cst.AugAssign)):
                targets.append(cst.Module([]).code_for_node(small.target))
        self.statement_targets.append(targets)

    def leave_SimpleStatementLine(self, original, updated):
        self.statement_targets.pop()
        if not self.unsafe_lines:
            return updated
        comments = [cst.EmptyLine(comment=cst.Comment(f"{MARKER} {why}")) for why in self.unsafe_lines]
        self.unsafe_lines = []
        return updated.with_changes(leading_lines=[*updated.leading_lines, *comments])

    def _why_unsafe(self) -> str | None:
        if not self.functions:
            return "built at module level, shared by every user; build it per request inside the handler"
        if self.functions[-1] in NOT_REQUEST_PATH:
            return (f"built in {self.functions[-1]}, once for every user; build it per request in "
                    "predict/predict_stream")
        targets = self.statement_targets[-1] if self.statement_targets else []
        shared = [target for target in targets if target.startswith("self.") or target in self.globals]
        if shared:
            return f"stored in {shared[0]}, shared by concurrent requests; keep it in a local variable"
        return None

    def _strategy_argument(self, call: cst.Call) -> cst.Arg | None:
        if dotted(call.func) not in CLIENT_CLASSES:
            return None
        return next((arg for arg in call.args if arg.keyword and arg.keyword.value in STRATEGY_KEYWORDS
                     and self._is_strategy_call(arg.value)), None)

    def visit_Call(self, node: cst.Call) -> None:
        argument = self._strategy_argument(node)
        if argument is not None:
            self.handled.add(id(argument.value))  # the client's rewrite covers its strategy

    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        if self._strategy_argument(original) is not None:
            return self._client(original, len(original.args) == 1)
        if self._is_strategy_call(original) and id(original) not in self.handled:
            self._refuse(original, "the Model Serving user credentials are used here in a way that cannot be "
                                   "rewritten safely; build the client with `user_workspace_client()` per request")
        return updated

    def leave_Attribute(self, original: cst.Attribute, updated: cst.Attribute) -> cst.BaseExpression:
        if original.attr.value == VECTOR_SEARCH_USER:
            self._refuse(original, "VectorSearchClient's Model Serving user credentials do not work in an App; "
                                   "build it per request from the user's token (`forwarded_user_token()`)")
        return updated

    def _client(self, original: cst.Call, only_argument: bool) -> cst.BaseExpression:
        why = self._why_unsafe()
        if why is None and not only_argument:
            why = "the WorkspaceClient takes other arguments too; user_workspace_client() takes none"
        if why:
            self._refuse(original, why)
            return original
        self.sites.append(CredentialSite(self._line(original), True,
                                         "WorkspaceClient(credentials_strategy=...) -> user_workspace_client()"))
        return cst.Call(func=cst.Name(USER_CLIENT[1]))

    def _refuse(self, node: cst.CSTNode, why: str) -> None:
        self.sites.append(CredentialSite(self._line(node), False, why))
        self.unsafe_lines.append(why)


def rewrite_user_credentials(source: str) -> CredentialRewrite:
    """The module with every safe use rewritten and every other one marked; unchanged without any use."""
    if STRATEGY not in source and VECTOR_SEARCH_USER not in source:
        return CredentialRewrite(source)
    module = cst.parse_module(source)
    names = strategy_names(module)
    rewriter = _Rewriter(names)
    module = MetadataWrapper(module).visit(rewriter)
    if not rewriter.sites:
        return CredentialRewrite(source)
    context = CodemodContext()
    if any(site.rewritten for site in rewriter.sites):
        AddImportsVisitor.add_needed_import(context, *USER_CLIENT)
        module = AddImportsVisitor(context).transform_module(module)
    for statement in module.body:  # drop the strategy's imports where nothing uses them any more
        for small in statement.body if isinstance(statement, cst.SimpleStatementLine) else []:
            if isinstance(small, cst.ImportFrom) and small.module and dotted(small.module) in STRATEGY_MODULES:
                for alias in small.names if not isinstance(small.names, cst.ImportStar) else []:
                    RemoveImportsVisitor.remove_unused_import(
                        context, dotted(small.module), dotted(alias.name),
                        dotted(alias.asname.name) if alias.asname else None)
            elif isinstance(small, cst.ImportFrom) and small.module and not isinstance(small.names, cst.ImportStar):
                for alias in small.names:
                    if f"{dotted(small.module)}.{dotted(alias.name)}" in STRATEGY_MODULES:
                        RemoveImportsVisitor.remove_unused_import(
                            context, dotted(small.module), dotted(alias.name),
                            dotted(alias.asname.name) if alias.asname else None)
    module = RemoveImportsVisitor(context).transform_module(module)
    return CredentialRewrite(module.code, rewriter.sites)


def rewrite_app_files(files: dict[str, bytes], package: str) -> list[tuple[str, CredentialSite]]:
    """Rewrite every Python file the code step writes under `package`/ (in place); each site with the app path
    and its line in the file as written (a refused site's line is the line of its marker comment)."""
    found = []
    for path in sorted(files):
        if not (path.startswith(f"{package}/") and path.endswith(".py")):
            continue
        source = files[path].decode("utf-8")
        rewrite = rewrite_user_credentials(source)
        if not rewrite.sites:
            continue
        files[path] = rewrite.code.encode("utf-8")
        marker_lines = iter(number for number, line in enumerate(rewrite.code.splitlines(), 1) if MARKER in line)
        for site in sorted(rewrite.sites, key=lambda site: site.line):
            line = site.line if site.rewritten else next(marker_lines, site.line)
            found.append((path, CredentialSite(line, site.rewritten, site.why)))
    return found


REWRITTEN_NOTE = ("the user's token arrives per request as x-forwarded-access-token; declare the app's user_api_scopes "
                  "(`migrate resources` does it) so Apps forwards it")


def site_findings(app_name: str, sites: list[tuple[str, CredentialSite]]) -> list[Finding]:
    """COD030 (error) where a use was left with its marker; COD031 (info) where it was rewritten."""
    findings = []
    for path, site in sites:
        where = f"{app_name}/{path}:{site.line}"
        if site.rewritten:
            findings.append(Finding("COD031", "info", where,
                                    "ModelServingUserCredentials became user_workspace_client(), built per request "
                                    "from the user's forwarded token (agent_server/user_auth.py)", REWRITTEN_NOTE))
        else:
            findings.append(Finding("COD030", "error", where,
                                    f"Model Serving user credentials left as they were ({site.why}): in an App they "
                                    "fall back to the app's own service principal, so every user would act as the app",
                                    "build the client per request inside predict/predict_stream with `from "
                                    "agent_server.user_auth import user_workspace_client`, keep it in a local "
                                    f"variable, and delete the `{MARKER.split(':')[0][2:]}` comment"))
    return findings
