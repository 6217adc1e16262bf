"""How many requests per second one example agent serves, served every way of benchmarks/servers.py, in one run.

    uv run python benchmarks/concurrency.py [--concurrency 64] [--latency-ms 200] [--requests N]

Against the workspace stand-in with LLM latency L, `examples/openai_tools` is served as the ceiling, the
original model, the two hand migrations a user would write from the official template, and the three ways
`migrate` gives (see servers.py), each driven by C concurrent httpx.AsyncClient clients for N requests. The
ideal is min(C / (calls × L), ceiling), where `calls` is how many LLM calls one request makes (the stand-in
counts them; this agent calls the LLM twice). Traces go over HTTP to a real `mlflow server` on loopback, as a
deployed app exports them (`--trace-store sqlite`: each server's own SQLite file, to compare). Each mode's
ratio to the original, to the hand migration of the same mode, and to the ideal is printed; the last line
printed is one JSON object. Servers run in their own process groups and are always stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import standin  # noqa: E402
from benchmarks.servers import (EXAMPLE, HAND_PEER, MODES, BenchmarkError, build_apps, demo_apps,  # noqa: E402
                                server_command, trace_server, with_peers)
from benchmarks import cpu  # noqa: E402
from scripts import app_process  # noqa: E402

MIGRATED = ("original", "hand_sync", "hand_async", "sync", "sync_2w", "async")
WARMUP_REQUESTS = 4
REQUEST_TIMEOUT = 120.0

# ---------------------------------------------------------------------------------------------------- driving


async def drive(url: str, request: dict, concurrency: int, requests: int, watched: dict[str, int]) -> dict:
    """C clients share N requests; per-request latency and errors, the wall time of the whole run, and where
    the CPU went from the end of the warm-up to the last answer (`watched`: the servers' pids by name).

    Each client has its own connection (its own httpx.AsyncClient), as C separate callers would: one shared
    pool of C connections costs the driver O(C²) Python per request in httpcore's pool bookkeeping, which on
    a small machine takes CPU from the server being measured.
    """
    latencies: list[float] = []
    errors = 0
    first_error: str | None = None
    remaining = requests
    body = json.dumps(request).encode()
    headers = {"Content-Type": "application/json"}

    def new_client() -> httpx.AsyncClient:
        # verify=False: the servers are plain http on localhost, and loading the CA bundle C times is slow.
        return httpx.AsyncClient(limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
                                 timeout=REQUEST_TIMEOUT, headers=headers, verify=False)

    async with new_client() as client:
        for _ in range(WARMUP_REQUESTS):
            response = await client.post(f"{url}/invocations", content=body)
            if response.status_code != 200:
                raise BenchmarkError(f"warm-up request to {url} got HTTP {response.status_code}: {response.text[:500]}")

    async def client_loop(client: httpx.AsyncClient) -> None:
        nonlocal remaining, errors, first_error
        async with client:
            while remaining > 0:
                remaining -= 1
                started = time.perf_counter()
                try:
                    response = await client.post(f"{url}/invocations", content=body)
                    ok = response.status_code == 200
                    problem = None if ok else f"HTTP {response.status_code}: {response.text[:200]}"
                except httpx.HTTPError as error:
                    ok, problem = False, f"{type(error).__name__}: {error}"
                if ok:
                    latencies.append(time.perf_counter() - started)
                else:
                    errors += 1
                    first_error = first_error or problem

    clients = [new_client() for _ in range(concurrency)]
    before = cpu.read(watched)
    started = time.perf_counter()
    await asyncio.gather(*(client_loop(client) for client in clients))
    wall = time.perf_counter() - started
    return {"latencies": latencies, "errors": errors, "first_error": first_error, "wall": wall,
            **cpu.spent(before, cpu.read(watched), requests)}


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def summary(run: dict, ideal: float | None) -> dict:
    rps = len(run["latencies"]) / run["wall"] if run["wall"] else 0.0
    result = {"rps": round(rps, 1),
              "p50_ms": round(statistics.median(run["latencies"]) * 1000, 1) if run["latencies"] else None,
              "p99_ms": round(percentile(run["latencies"], 0.99) * 1000, 1) if run["latencies"] else None,
              "ratio_to_ideal": round(rps / ideal, 3) if ideal else None,
              "errors": run["errors"],
              "cpu_ms_per_request": run["cpu_ms_per_request"], "machine_busy": run["machine_busy"]}
    if run["first_error"]:
        result["first_error"] = run["first_error"]
    return result


STARTED = time.monotonic()


def log(message: str) -> None:
    print(f"{time.monotonic() - STARTED:6.1f}s {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------------- main


def measure(mode: str, workdir: Path, apps: dict[str, Path], env: dict, request: dict, args,
            tracking: app_process.RunningServer | None) -> dict:
    """One mode driven to N answers: the run's latencies and where the CPU went meanwhile."""
    tracking_uri = tracking.url if tracking else f"sqlite:///{workdir / f'traces-{mode}.db'}"
    command = server_command(mode, workdir, apps, env, tracking_uri, args.trace_sampling)
    if args.app_cpus:
        argv = command.argv
        command = dataclasses.replace(command, argv=lambda port: cpu.pinned_argv(argv(port), args.app_cpus))
    log(f"[{mode}] starting {command.description}")
    with app_process.serving(command, start_timeout=300, app_dir=command.cwd,
                             log_path=workdir / f"server-{mode}.log") as server:
        log(f"[{mode}] driving {args.requests} requests with {args.concurrency} clients")
        watched = {"app": server.pid, **({"traces": tracking.pid} if tracking else {})}
        return asyncio.run(drive(server.url, request, args.concurrency, args.requests, watched))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", type=int, default=64, help="concurrent clients C (default: %(default)s)")
    parser.add_argument("--latency-ms", type=float, default=200.0,
                        help="the stand-in LLM's latency per call L (default: %(default)s)")
    parser.add_argument("--requests", type=int, help="requests N per mode (default: 8 × C)")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES),
                        help="which ways to serve (benchmarks/servers.py)")
    parser.add_argument("--trace-sampling", type=float, default=1.0,
                        help="MLFLOW_TRACE_SAMPLING_RATIO for every server (default: 1.0, every request traced)")
    parser.add_argument("--trace-store", choices=("http", "sqlite"), default="http",
                        help="where the servers export traces: a real `mlflow server` on loopback over HTTP, as a "
                             "deployed app does (default), or each server's own SQLite file")
    parser.add_argument("--app-cpus", metavar="CPUS",
                        help="run the servers being measured on these CPUs only (e.g. 0) and the driver, the "
                             "stand-in and the trace server on the others, as an app has its compute to itself "
                             "(Linux; default: every process on every CPU)")
    parser.add_argument("--workdir", type=Path, help="keep the built apps and logs here (default: a temp folder)")
    parser.add_argument("--registered", type=Path,
                        help=f"a JSON file saying where examples/{EXAMPLE} is already registered, as examples/catalog.py's "
                             "register_example returns it: skips logging the model (the tests share one registration)")
    parser.add_argument("--apps-from", type=Path, metavar="DEMO_WORKDIR",
                        help="serve the sync and async apps `migrate demo --workdir DEMO_WORKDIR` built (copied, "
                             "with their peers derived from them) instead of building them here")
    args = parser.parse_args(argv)
    if args.apps_from and args.registered:
        parser.error("--apps-from serves apps already built from a registered model: leave out --registered")
    args.requests = args.requests or 8 * args.concurrency
    try:
        args.app_cpus = cpu.parse_cpus(args.app_cpus) if args.app_cpus else None
    except ValueError as error:
        parser.error(f"--app-cpus: {error}")
    if args.concurrency < 1 or args.requests < 1 or args.latency_ms < 0:
        parser.error("--concurrency and --requests must be at least 1, --latency-ms not negative")
    return args


def ratios(result: dict) -> dict[str, dict]:
    """Each served mode's req/s over the original's, over its hand-migration peer's, and over the ideal."""
    def over(mode: str, other: str | None) -> float | None:
        if other not in result or mode not in result or not result[other]["rps"]:
            return None
        return round(result[mode]["rps"] / result[other]["rps"], 2)
    return {mode: {"to_original": over(mode, "original"), "to_hand": over(mode, HAND_PEER.get(mode)),
                   "to_ideal": result[mode]["ratio_to_ideal"]}
            for mode in MIGRATED if mode in result and mode != "original"}


def report(result: dict, latency_bound: float) -> None:
    print(f"C={result['concurrency']} clients, L={result['latency_ms']:.0f} ms per LLM call, "
          f"{result['llm_calls_per_request']:.2f} LLM calls per request, N={result['requests']} requests per mode, "
          f"{result['cores']} cores" + (f" (the servers measured on CPUs {result['app_cpus']}, the rest on the others)"
                                        if result["app_cpus"] else "") + f", traces to {result['trace_store']}")
    print(f"ideal = min(C / (calls × L) = {latency_bound:.1f}, ceiling) = {result['ideal_rps']:.1f} req/s")
    print(f"{'mode':<11} {'req/s':>8} {'p50 ms':>9} {'p99 ms':>9} {'errors':>7} {'÷ideal':>7} {'÷original':>10} "
          f"{'÷hand':>7}")
    shown = lambda value: "-" if value is None else f"{value:.2f}"  # noqa: E731
    for mode in MODES:
        figures = result.get(mode)
        if figures:
            ratio = result["ratios"].get(mode, {})
            print(f"{mode:<11} {figures['rps']:>8.1f} {figures['p50_ms']!s:>9} {figures['p99_ms']!s:>9} "
                  f"{figures['errors']:>7} {shown(figures['ratio_to_ideal']):>7} "
                  f"{shown(ratio.get('to_original')):>10} {shown(ratio.get('to_hand')):>7}")
    print("CPU per request, ms (the app's processes, the trace server, this driver, the rest of the machine), "
          "and how busy all cores were:")
    print(f"{'mode':<11} {'app':>7} {'traces':>7} {'driver':>7} {'rest':>7} {'busy':>6}")
    for mode in MODES:
        figures = result.get(mode)
        if figures:
            used = figures["cpu_ms_per_request"]
            print(f"{mode:<11} {shown(used.get('app')):>7} {shown(used.get('traces')):>7} "
                  f"{shown(used.get('driver')):>7} {shown(used.get('rest')):>7} {shown(figures['machine_busy']):>6}")


def run_modes(args, workdir: Path, stack: ExitStack) -> tuple[dict[str, dict], dict[str, float]]:
    if args.app_cpus:
        cpu.keep_off(args.app_cpus)  # before the stand-in and the trace server start: they inherit it
    workspace = stack.enter_context(standin.running(latency_ms=0))
    env = workspace.environ()
    registered = json.loads(args.registered.read_text()) if args.registered else None
    log("building the apps")
    # The trace server starts while the apps are built: nothing is measured yet, and both take a while.
    with ThreadPoolExecutor(max_workers=1) as builder:
        if args.apps_from:
            building = builder.submit(lambda: with_peers(workdir, demo_apps(args.apps_from, workdir), env))
        else:
            building = builder.submit(build_apps, workdir, env, registered)
        tracking = None
        if args.trace_store == "http":
            log("starting mlflow server for the traces")
            tracking = stack.enter_context(app_process.serving(trace_server(workdir, env), start_timeout=300,
                                                               log_path=workdir / "server-traces.log"))
        apps = building.result()
    log("apps built")
    request = json.loads((workdir / "original_mlflow_model" / "input_example.json").read_text())
    workspace.set_latency(args.latency_ms)
    runs: dict[str, dict] = {}
    calls: dict[str, float] = {}
    for mode in args.modes:
        before = workspace.stats()["llm_requests"]
        runs[mode] = measure(mode, workdir, apps, env, request, args, tracking)
        calls[mode] = (workspace.stats()["llm_requests"] - before) / (args.requests + WARMUP_REQUESTS)
    return runs, calls


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with ExitStack() as stack:
        workdir = args.workdir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-")))
        workdir.mkdir(parents=True, exist_ok=True)
        runs, calls = run_modes(args, workdir, stack)

    agent_calls = max((calls[mode] for mode in MIGRATED if mode in calls), default=1.0) or 1.0
    ceiling = summary(runs["ceiling"], None) if "ceiling" in runs else None
    latency_bound = args.concurrency / (agent_calls * args.latency_ms / 1000) if args.latency_ms else float("inf")
    ideal = min(latency_bound, ceiling["rps"]) if ceiling else latency_bound
    result: dict = {"concurrency": args.concurrency, "latency_ms": args.latency_ms, "requests": args.requests,
                    "llm_calls_per_request": round(agent_calls, 2), "ideal_rps": round(ideal, 1),
                    "trace_sampling": args.trace_sampling, "trace_store": args.trace_store, "cores": os.cpu_count(),
                    "app_cpus": sorted(args.app_cpus) if args.app_cpus else None,
                    "load_average": [round(value, 2) for value in os.getloadavg()]}
    for mode in MODES:
        if mode in runs:
            result[mode] = summary(runs[mode], ideal)
    result["ratios"] = ratios(result)
    report(result, latency_bound)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchmarkError as error:
        print(f"benchmark failed: {error}", file=sys.stderr)
        sys.exit(1)
    except app_process.ServerNotReady as error:
        print(f"benchmark failed: {error}\n" + "\n".join(error.log_tail), file=sys.stderr)
        sys.exit(1)
