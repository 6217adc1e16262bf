"""Run an async-native agent's coroutines from sync-mode handlers, on one event loop shared by all requests.

In sync mode the agent's code is not converted, so its async methods may still make blocking calls; run on
the server's event loop they would hold up every other request. Model Serving ran them through
`asyncio.run(...)` in a sync `predict`, one new loop per call, which cannot work under a server that already
runs a loop (and pays for a loop, and for the clients bound to it, on every request). Here one background
thread runs one loop for the process, started on first use:

- `run_async(apredict, request)` runs one coroutine there and awaits its result;
- `iterate_async(apredict_stream, request)` steps an async generator there, one item at a time.

Each call runs in a copy of the caller's context variables (MLflow's trace context, AgentServer's request
headers), as `agent_server/sync_bridge.py` does for sync code.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

_T = TypeVar("_T")
_loop: asyncio.AbstractEventLoop | None = None
_loop_lock = threading.Lock()
_EXHAUSTED = object()


def background_loop() -> asyncio.AbstractEventLoop:
    """The process's one background event loop, running in a daemon thread."""
    global _loop
    with _loop_lock:
        if _loop is None:
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="agent-loop", daemon=True).start()
            _loop = loop
        return _loop


async def _on_background(awaitable: Awaitable[_T], context: contextvars.Context) -> _T:
    loop = background_loop()
    done: concurrent.futures.Future = concurrent.futures.Future()

    async def step():
        return await awaitable

    def start():
        task = loop.create_task(step(), context=context)

        def finish(task: asyncio.Task):
            if task.cancelled():
                done.cancel()
            elif task.exception() is not None:
                done.set_exception(task.exception())
            else:
                done.set_result(task.result())

        task.add_done_callback(finish)

    loop.call_soon_threadsafe(start)
    return await asyncio.wrap_future(done)


async def run_async(function: Callable[..., Awaitable[_T]], *args: Any, **kwargs: Any) -> _T:
    """`await function(*args, **kwargs)` on the background loop, in a copy of the caller's context."""
    return await _on_background(function(*args, **kwargs), contextvars.copy_context())


async def iterate_async(function: Callable[..., AsyncIterator[_T]], *args: Any, **kwargs: Any) -> AsyncIterator[_T]:
    """The items of the async generator `function(*args, **kwargs)`, each produced on the background loop.

    Every step runs in the same copied context, so a span the generator opens stays current across its
    yields; when the consumer stops early, the generator is closed there too (its `finally` blocks run)."""
    context = contextvars.copy_context()
    generator = function(*args, **kwargs)

    async def advance():
        try:
            return await generator.__anext__()
        except StopAsyncIteration:
            return _EXHAUSTED

    try:
        while True:
            item = await _on_background(advance(), context)
            if item is _EXHAUSTED:
                return
            yield item
    finally:
        await _on_background(generator.aclose(), context)
