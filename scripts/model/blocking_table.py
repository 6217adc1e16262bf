"""Which calls block an event loop, as data: a call pattern, its kind, and what to use instead.

A pattern is matched (fnmatch) against the call's name after import aliases are resolved (`sleep(...)`
after `from time import sleep` is `time.sleep`) and against the name as written (`w.genie.start_conversation`
on a local client). Every entry carries an example call; tests/test_blocking_table.py classifies each one.
Rules that need more than a name (a sync HTTP client kept in a variable, `.create` on an LLM client,
LangChain's `.invoke`, iterating a sync generator) stay in `scripts.model.blocking`.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

TO_THREAD = "`await asyncio.to_thread(...)` around the call (the SDK has no async client)"


@dataclass(frozen=True)
class BlockingPattern:
    pattern: str
    kind: str
    example: str  # a call that the pattern must classify, with the import it needs


INSTEAD = {
    "sleep": "`await asyncio.sleep(...)`",
    "http": "an `httpx.AsyncClient` created once at module level, with `await client.get/post(...)`",
    "sync-client": "the async client (`AsyncOpenAI`, `AsyncDatabricksOpenAI`), created once at module level",
    "llm-call": "an async client (`AsyncOpenAI`/`AsyncDatabricksOpenAI`) and `await ...create(...)` "
                "(`async for` over a stream)",
    "langchain-call": "the async method: `.ainvoke`/`.astream`/`.abatch`, awaited (`async for` for streams)",
    "database": "an async driver (`psycopg.AsyncConnection`, `psycopg_pool.AsyncConnectionPool`, "
                "`sqlalchemy.ext.asyncio.create_async_engine`)",
    "process": "`asyncio.create_subprocess_exec(...)`",
    "sync-iteration": "make the generator async (`async def` ... `yield`) and iterate it with `async for`",
    "databricks-sdk": TO_THREAD,
    "workspace-client": "build the client once at module level (or per request with "
                        "`await asyncio.to_thread(WorkspaceClient, ...)`): construction reads config and may call "
                        "the workspace",
    "event-loop": "the server already runs an event loop: `await` the coroutine instead (make the caller "
                  "`async def`); never start or nest a loop on the request path",
}

PATTERNS: tuple[BlockingPattern, ...] = (
    BlockingPattern("time.sleep", "sleep", "import time\ntime.sleep(1)"),
    *(BlockingPattern(f"requests.{method}", "http", f"import requests\nrequests.{method}('http://x')")
      for method in ("get", "post", "put", "patch", "delete", "head", "options", "request", "Session")),
    BlockingPattern("requests.sessions.Session", "http", "import requests.sessions\nrequests.sessions.Session()"),
    BlockingPattern("urllib.request.urlopen", "http", "from urllib.request import urlopen\nurlopen('http://x')"),
    *(BlockingPattern(f"httpx.{method}", "http", f"import httpx\nhttpx.{method}('http://x')")
      for method in ("get", "post", "put", "patch", "delete", "request", "stream", "Client")),
    BlockingPattern("subprocess.*", "process", "import subprocess\nsubprocess.run(['ls'])"),
    BlockingPattern("psycopg.connect", "database", "import psycopg\npsycopg.connect('dbname=x')"),
    BlockingPattern("psycopg2.connect", "database", "import psycopg2\npsycopg2.connect('dbname=x')"),
    BlockingPattern("psycopg_pool.ConnectionPool", "database", "from psycopg_pool import ConnectionPool\nConnectionPool('x')"),
    BlockingPattern("sqlalchemy.create_engine", "database", "from sqlalchemy import create_engine\ncreate_engine('x')"),
    BlockingPattern("databricks.sdk.WorkspaceClient", "workspace-client",
                    "from databricks.sdk import WorkspaceClient\nWorkspaceClient()"),
    BlockingPattern("databricks.sdk.core.Config", "workspace-client", "from databricks.sdk.core import Config\nConfig()"),
    BlockingPattern("databricks.sdk.config.Config", "workspace-client",
                    "from databricks.sdk.config import Config\nConfig()"),
    BlockingPattern("*.statement_execution.*", "databricks-sdk",
                    "w.statement_execution.execute_statement(statement='select 1', warehouse_id='x')"),
    BlockingPattern("*_and_wait", "databricks-sdk", "w.genie.start_conversation_and_wait('space', 'hi')"),
    BlockingPattern("*.genie.*", "databricks-sdk", "w.genie.create_message('space', 'conv', 'hi')"),
    BlockingPattern("*.vector_search_indexes.query_index", "databricks-sdk",
                    "w.vector_search_indexes.query_index('idx', columns=['a'])"),
    BlockingPattern("*.similarity_search", "databricks-sdk", "index.similarity_search(query_text='hi', columns=['a'])"),
    BlockingPattern("*.serving_endpoints.query", "databricks-sdk", "w.serving_endpoints.query('ep', inputs=[])"),
    *(BlockingPattern(f"*.files.{method}", "databricks-sdk", f"w.files.{method}('/Volumes/a/b/c/f.txt')")
      for method in ("upload", "download", "get_metadata", "list_directory_contents", "delete")),
    *(BlockingPattern(f"*.jobs.{method}", "databricks-sdk", f"w.jobs.{method}(1)")
      for method in ("run_now", "submit", "get_run", "get_run_output", "list_runs", "cancel_run")),
    BlockingPattern("asyncio.run", "event-loop", "import asyncio\nasyncio.run(main())"),
    BlockingPattern("*.run_until_complete", "event-loop", "loop.run_until_complete(main())"),
    BlockingPattern("asyncio.get_event_loop", "event-loop", "import asyncio\nasyncio.get_event_loop()"),
    BlockingPattern("nest_asyncio.apply", "event-loop", "import nest_asyncio\nnest_asyncio.apply()"),
)


def kind_by_name(resolved: str, written: str) -> str | None:
    """The kind of the first pattern the call's resolved or written name matches."""
    for entry in PATTERNS:
        if fnmatchcase(resolved, entry.pattern) or fnmatchcase(written, entry.pattern):
            return entry.kind
    return None
