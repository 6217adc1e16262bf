"""How many requests per second one example agent serves, four ways, in one run on this machine.

    uv run python benchmarks/concurrency.py [--concurrency 64] [--latency-ms 200] [--requests N]

Against the workspace stand-in with LLM latency L, `examples/openai_tools` is served
  (0) ceiling:  MLflow's AgentServer with a handler that answers at once (what this machine's CPU allows),
  (1) original: `mlflow models serve --env-manager local` on original_mlflow_model/, as Model Serving runs it,
  (2) sync:     the app `migrate code --mode sync` writes (the agent's sync code in sync_bridge worker threads),
  (3) async:    the app `migrate code --mode async` writes, with the conversion its report asks for done
                (an async OpenAI client awaited, custom_outputs passed through),
and each is driven by C concurrent httpx.AsyncClient clients for N requests. The ideal for (1)-(3) is
min(C / (calls × L), ceiling), where `calls` is how many LLM calls one request makes (the stand-in counts
them; this agent calls the LLM twice: the tool call, then the answer). The last line printed is one JSON object.

The apps are built through the `migrate` commands themselves (download, scaffold, code), so the benchmark
measures what users get. Servers run in their own process groups and are always stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import standin  # noqa: E402
from scripts import app_process, processes  # noqa: E402
from scripts.demo import load_example_module  # noqa: E402

EXAMPLE = "openai_tools"
MODES = ("ceiling", "original", "sync", "async")
WARMUP_REQUESTS = 4
REQUEST_TIMEOUT = 120.0

CEILING_AGENT = '''"""Answers at once: what AgentServer itself costs on this machine."""
from mlflow.genai.agent_server import invoke, stream
from mlflow.types.responses import ResponsesAgentResponse

ITEM = {"type": "message", "id": "m1", "role": "assistant", "content": [{"type": "output_text", "text": "ok"}]}


@invoke()
async def handle(request):
    return ResponsesAgentResponse(output=[ITEM])


@stream()
async def handle_stream(request):
    raise NotImplementedError("the ceiling measures invoke only")
    yield
'''

class BenchmarkError(RuntimeError):
    pass


def complete_async_conversion(agent_path: Path) -> None:
    """The judgement work `migrate code --mode async` leaves to the assistant (its COD009/COD010 findings),
    as recorded for this example in examples/async_conversions.py (the demo applies the same edits)."""
    conversions = load_example_module("async_conversions")
    try:
        conversions.convert(EXAMPLE, agent_path)
    except conversions.ConversionMismatch as error:
        raise BenchmarkError(str(error)) from None


# ---------------------------------------------------------------------------------------------------- building


def migrate(argv: list[str], env: dict) -> None:
    try:
        processes.run([sys.executable, "-m", "scripts.cli", *argv], cwd=REPO, env=env)
    except processes.CommandFailed as error:
        raise BenchmarkError(str(error)) from None


def build_apps(workdir: Path, env: dict, registered: dict | None = None) -> dict[str, Path]:
    """Register the example (unless `registered` says where it already is), download it, and build the sync,
    async and ceiling apps next to it."""
    if registered is None:
        catalog = load_example_module("catalog")
        registry = workdir / "registry"
        registry.mkdir(parents=True, exist_ok=True)
        log(f"registering examples/{EXAMPLE} (logging a model takes a while)")
        registered = catalog.register_example(EXAMPLE, registry, env)
    where = ["--workdir", str(workdir)]
    log("migrate download, analyze, scaffold, code (sync and async)")
    migrate(["download", "--model-uri", registered["model_uri"], "--registry-uri", registered["registry_uri"],
             "--tracking-uri", registered["tracking_uri"], *where], env)
    migrate(["analyze", *where], env)  # the code step migrates the class analyze found
    apps = {}
    for mode in ("sync", "async"):
        app = workdir / f"bench-{mode}"
        migrate(["scaffold", "--app-name", f"bench-{mode}", *where], env)
        migrate(["code", "--mode", mode, "--app", str(app), *where], env)
        apps[mode] = app
    complete_async_conversion(apps["async"] / "agent_server" / "agent.py")
    ceiling = workdir / "bench-ceiling" / "agent_server"
    ceiling.mkdir(parents=True)
    for name in ("__init__.py", "start_server.py"):
        shutil.copy(apps["sync"] / "agent_server" / name, ceiling / name)
    (ceiling / "agent.py").write_text(CEILING_AGENT, encoding="utf-8")
    apps["ceiling"] = ceiling.parent
    return apps


def server_command(mode: str, workdir: Path, apps: dict[str, Path], env: dict,
                   trace_sampling: float = 1.0) -> app_process.ServerCommand:
    # Each server keeps its traces in its own store: tracing stays on, as it is in production, unless
    # --trace-sampling lowers MLflow's sampling ratio to see what tracing costs. MLFLOW_EXPERIMENT_ID is set as
    # a deployed app's `experiment` resource sets it (0: the store's default experiment); without it MLflow
    # searches for a Databricks notebook context (a failing import) on every trace.
    env = {**env, "MLFLOW_TRACKING_URI": f"sqlite:///{workdir / f'traces-{mode}.db'}", "PYTHONUNBUFFERED": "1",
           "MLFLOW_TRACE_SAMPLING_RATIO": str(trace_sampling), "MLFLOW_EXPERIMENT_ID": "0"}
    if mode == "original":
        def argv(port: int) -> list[str]:
            return [sys.executable, "-m", "mlflow", "models", "serve", "-m", str(workdir / "original_mlflow_model"),
                    "--env-manager", "local", "-h", app_process.LOCALHOST, "-p", str(port)]
        return app_process.ServerCommand(argv, workdir, env, health_path="/ping", description="mlflow models serve")

    def argv(port: int) -> list[str]:
        return [sys.executable, "-m", "agent_server.start_server", "--host", app_process.LOCALHOST,
                "--port", str(port)]
    return app_process.ServerCommand(argv, apps[mode], env, description=f"{mode} app")


# ---------------------------------------------------------------------------------------------------- driving


async def drive(url: str, request: dict, concurrency: int, requests: int) -> dict:
    """C clients share N requests; per-request latency and errors, and the wall time of the whole run.

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
    started = time.perf_counter()
    await asyncio.gather(*(client_loop(client) for client in clients))
    wall = time.perf_counter() - started
    return {"latencies": latencies, "errors": errors, "first_error": first_error, "wall": wall}


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
              "errors": run["errors"]}
    if run["first_error"]:
        result["first_error"] = run["first_error"]
    return result


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------------- main


def measure(mode: str, workdir: Path, apps: dict[str, Path], env: dict, request: dict, args) -> dict:
    command = server_command(mode, workdir, apps, env, args.trace_sampling)
    log(f"[{mode}] starting {command.description}")
    with app_process.serving(command, start_timeout=300, app_dir=command.cwd,
                             log_path=workdir / f"server-{mode}.log") as server:
        log(f"[{mode}] driving {args.requests} requests with {args.concurrency} clients")
        return asyncio.run(drive(server.url, request, args.concurrency, args.requests))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", type=int, default=64, help="concurrent clients C (default: %(default)s)")
    parser.add_argument("--latency-ms", type=float, default=200.0,
                        help="the stand-in LLM's latency per call L (default: %(default)s)")
    parser.add_argument("--requests", type=int, help="requests N per mode (default: 8 × C)")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES), help="which ways to serve")
    parser.add_argument("--trace-sampling", type=float, default=1.0,
                        help="MLFLOW_TRACE_SAMPLING_RATIO for every server (default: 1.0, every request traced)")
    parser.add_argument("--workdir", type=Path, help="keep the built apps and logs here (default: a temp folder)")
    parser.add_argument("--registered", type=Path,
                        help=f"a JSON file saying where examples/{EXAMPLE} is already registered, as examples/catalog.py's "
                             "register_example returns it: skips logging the model (the tests share one registration)")
    args = parser.parse_args(argv)
    args.requests = args.requests or 8 * args.concurrency
    if args.concurrency < 1 or args.requests < 1 or args.latency_ms < 0:
        parser.error("--concurrency and --requests must be at least 1, --latency-ms not negative")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with ExitStack() as stack:
        workdir = args.workdir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-")))
        workdir.mkdir(parents=True, exist_ok=True)
        workspace = stack.enter_context(standin.running(latency_ms=0))
        env = workspace.environ()
        registered = json.loads(args.registered.read_text()) if args.registered else None
        apps = build_apps(workdir, env, registered)
        request = json.loads((workdir / "original_mlflow_model" / "input_example.json").read_text())
        workspace.set_latency(args.latency_ms)

        runs: dict[str, dict] = {}
        calls: dict[str, float] = {}
        for mode in args.modes:
            before = workspace.stats()["llm_requests"]
            runs[mode] = measure(mode, workdir, apps, env, request, args)
            made = workspace.stats()["llm_requests"] - before
            calls[mode] = made / (args.requests + WARMUP_REQUESTS)

    agent_calls = max((calls[mode] for mode in ("original", "sync", "async") if mode in calls), default=1.0) or 1.0
    ceiling = summary(runs["ceiling"], None) if "ceiling" in runs else None
    latency_bound = args.concurrency / (agent_calls * args.latency_ms / 1000) if args.latency_ms else float("inf")
    ideal = min(latency_bound, ceiling["rps"]) if ceiling else latency_bound
    if ceiling is not None:  # at least 1.0: how far the CPU's limit is above the latency bound
        ceiling = summary(runs["ceiling"], ideal)
    result: dict = {"concurrency": args.concurrency, "latency_ms": args.latency_ms, "requests": args.requests,
                    "llm_calls_per_request": round(agent_calls, 2), "ideal_rps": round(ideal, 1),
                    "trace_sampling": args.trace_sampling, "cores": os.cpu_count()}
    if ceiling is not None:
        result["ceiling"] = ceiling
    for mode in ("original", "sync", "async"):
        if mode in runs:
            result[mode] = summary(runs[mode], ideal)

    print(f"C={args.concurrency} clients, L={args.latency_ms:.0f} ms per LLM call, {agent_calls:.2f} LLM calls per "
          f"request, N={args.requests} requests per mode, {os.cpu_count()} cores")
    print(f"ideal = min(C / (calls × L) = {latency_bound:.1f}, ceiling) = {ideal:.1f} req/s")
    print(f"{'mode':<9} {'req/s':>8} {'p50 ms':>9} {'p99 ms':>9} {'ratio':>7} {'errors':>7}")
    for mode in MODES:
        figures = result.get(mode)
        if figures:
            ratio = f"{figures['ratio_to_ideal']:.2f}" if figures["ratio_to_ideal"] is not None else "-"
            print(f"{mode:<9} {figures['rps']:>8.1f} {figures['p50_ms']!s:>9} {figures['p99_ms']!s:>9} {ratio:>7} "
                  f"{figures['errors']:>7}")
    if "original" in result:
        for mode in ("sync", "async"):
            if mode in result and result["original"]["rps"]:
                print(f"{mode} / original = {result[mode]['rps'] / result['original']['rps']:.1f}×")
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
