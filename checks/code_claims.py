"""What the code report claims about the handlers, checked against the handlers in agent_server/agent.py.

The code report's `mode` decides how a reviewer reads the app (sync: the agent runs in worker threads; async:
on the event loop, so every call must be async). A report edited after the step, or handlers rewritten by
hand, must not keep a claim the code no longer makes. And whatever the mode, a handler written as a plain
`def` runs on AgentServer's event loop and serializes every request (mlflow/mlflow#23953).
"""

from __future__ import annotations

import ast
import json

from scripts.core.findings import Finding
from scripts.core.layout import MigrationLayout

ENTRY = "agent_server/agent.py"
HANDLER_DECORATORS = {"invoke", "stream"}
# Sync mode runs the agent off the server loop: worker threads, or (an async-native agent) the shared background
# loop of agent_server/loop_bridge.py.
SYNC_BRIDGE = {"run_sync", "iterate_sync", "run_async", "iterate_async"}
# Transforms that serve the agent through worker threads whatever the mode (a ChatAgent's sync class).
THREADED_TRANSFORMS = {"chat_wrapper", "langchain", "chat_model"}  # shapes: the last two


def _decorator_name(node: ast.expr) -> str | None:
    target = node.func if isinstance(node, ast.Call) else node
    if isinstance(target, ast.Name):
        return target.id
    if isinstance(target, ast.Attribute):
        return target.attr
    return None


def handlers_in(tree: ast.Module) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    """The module-level functions decorated with `@invoke()` or `@stream()`."""
    return [node for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and any(_decorator_name(decorator) in HANDLER_DECORATORS for decorator in node.decorator_list)]


def _calls_sync_bridge(handler: ast.AST) -> bool:
    return any(isinstance(node, ast.Call) and _decorator_name(node) in SYNC_BRIDGE for node in ast.walk(handler))


def check_code_claims(layout: MigrationLayout) -> list[Finding]:
    entry = layout.root / ENTRY
    report_path = layout.report_path("code")
    if not entry.is_file() or not report_path.is_file():
        return []
    try:
        tree = ast.parse(entry.read_text(encoding="utf-8"))
    except (SyntaxError, UnicodeDecodeError, ValueError):
        return []  # the code check's import says what is wrong with the file
    payload = json.loads(report_path.read_text(encoding="utf-8"))["payload"]
    where = f"{layout.root.name}/{ENTRY}"
    findings = []
    for handler in handlers_in(tree):
        if isinstance(handler, ast.FunctionDef):
            findings.append(Finding(
                "COD041", "error", f"{where}:{handler.lineno}",
                f"the handler `{handler.name}` is a plain `def`: AgentServer runs it on its event loop, so one slow "
                "request blocks every other one (mlflow/mlflow#23953)",
                "make it `async def` and hand the agent's sync code to `agent_server.sync_bridge.run_sync` / "
                "`iterate_sync`, as `migrate code --mode sync` writes it"))
            continue
        if payload.get("transform") in THREADED_TRANSFORMS or payload.get("agent_class") is None:
            continue
        bridged = _calls_sync_bridge(handler)
        if payload.get("mode") == "sync" and not bridged:
            findings.append(Finding(
                "COD042", "error", f"{where}:{handler.lineno}",
                f"the code report says sync mode, but `{handler.name}` does not run the agent in worker threads "
                "(no run_sync/iterate_sync): the report or the handler was changed after the code step",
                "run `migrate code --mode sync --force` (or `--mode async` if the handlers are async now) so the "
                "report says what the code does"))
        elif payload.get("mode") == "async" and bridged:
            findings.append(Finding(
                "COD042", "error", f"{where}:{handler.lineno}",
                f"the code report says async mode, but `{handler.name}` runs the agent in worker threads "
                "(run_sync/iterate_sync): the report or the handler was changed after the code step",
                "run `migrate code --mode async --force` (or `--mode sync`) so the report says what the code does"))
    return findings
