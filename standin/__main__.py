"""`python -m standin --port 0 --token T`: serve the stand-in; print one JSON ready line on stdout.

The ready line (`{"url": ..., "port": ...}`) comes once the socket listens, so a parent reads it and
knows the port, even when it asked for any free port (0).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys

import uvicorn

from standin.server import WorkspaceState, build_app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="standin", description="Local stand-in for a Databricks workspace.")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (0: any free port)")
    parser.add_argument("--token", required=True, help="the access token clients must send")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay before every LLM answer")
    args = parser.parse_args(argv)

    # proto=IPPROTO_TCP, not the default 0: asyncio sets TCP_NODELAY only on sockets whose proto says TCP, and
    # without it Nagle holds the body uvicorn writes after the headers until the client's delayed ACK (~40 ms
    # more per call, every LLM call an agent makes).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", args.port))
    sock.listen(1024)
    port = sock.getsockname()[1]

    state = WorkspaceState(token=args.token, latency_ms=args.latency_ms)
    config = uvicorn.Config(build_app(state), log_level="warning", access_log=False, backlog=1024)
    server = uvicorn.Server(config)

    async def serve() -> None:
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started and not task.done():
            await asyncio.sleep(0.01)
        if server.started:
            print(json.dumps({"url": f"http://127.0.0.1:{port}", "port": port}), flush=True)
        await task

    asyncio.run(serve())
    sys.exit(0)


if __name__ == "__main__":
    main()
