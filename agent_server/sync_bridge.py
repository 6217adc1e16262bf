"""Serve a sync agent without blocking the server: its code runs in worker threads, with the request's context.

MLflow's AgentServer calls a sync `@invoke`/`@stream` function directly on its event loop, so one slow
request holds up every other one, `/health` included (mlflow/mlflow#23953). The migrated handlers are
therefore `async def` and hand the agent's sync code to this module:

- `run_sync(predict, request)` runs one call in a worker thread;
- `iterate_sync(predict_stream, request)` steps a sync generator in worker threads, one event at a time.

The pool is sized for the concurrency the app serves (`AGENT_SYNC_WORKERS`, default 64), not the
`asyncio.to_thread` default of min(32, cores + 4) threads, which caps a 2-core app at 6 requests in flight.
Each call runs in a copy of the caller's context variables: a plain `ThreadPoolExecutor.submit` does not
carry them, and MLflow's trace context and AgentServer's request headers (`get_request_headers()`, where
`x-forwarded-access-token` lives) are context variables.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import os
import threading
from collections.abc import AsyncIterator, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

WORKERS_ENV = "AGENT_SYNC_WORKERS"
DEFAULT_WORKERS = 64

_T = TypeVar("_T")
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()
_EXHAUSTED = object()


def worker_count() -> int:
    value = os.environ.get(WORKERS_ENV, "")
    try:
        count = int(value) if value else DEFAULT_WORKERS
    except ValueError:
        raise ValueError(f"{WORKERS_ENV}={value!r} is not a whole number of threads") from None
    if count < 1:
        raise ValueError(f"{WORKERS_ENV} must be at least 1, got {count}")
    return count


def pool() -> ThreadPoolExecutor:
    """The process's worker threads, created on first use so the environment variable is read at run time."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=worker_count(), thread_name_prefix="sync-agent")
        return _pool


async def run_sync(function: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
    """`function(*args, **kwargs)` in a worker thread, in a copy of the caller's context."""
    context = contextvars.copy_context()
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(pool(), functools.partial(context.run, function, *args, **kwargs))


async def iterate_sync(generator_function: Callable[..., Iterable[_T]], *args: Any, **kwargs: Any) -> AsyncIterator[_T]:
    """The items of `generator_function(*args, **kwargs)`, each produced in a worker thread.

    Every step runs in the same copied context, so a span the generator opens stays current across its
    yields. When the consumer stops early (a client disconnects), the generator is closed in a worker
    thread too, which runs its `finally` blocks.
    """
    context = contextvars.copy_context()
    loop = asyncio.get_running_loop()
    iterator = await loop.run_in_executor(
        pool(), functools.partial(context.run, lambda: iter(generator_function(*args, **kwargs))))

    def advance():
        try:
            return next(iterator)
        except StopIteration:
            return _EXHAUSTED

    finished = False
    try:
        while True:
            item = await loop.run_in_executor(pool(), context.run, advance)
            if item is _EXHAUSTED:
                finished = True
                return
            yield item
    finally:
        close = getattr(iterator, "close", None)
        if not finished and close is not None:
            await loop.run_in_executor(pool(), context.run, close)
