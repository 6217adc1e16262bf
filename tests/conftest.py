"""How the suite is organized, and which fixture to reuse so a new test stays fast.

Two tiers. `uv run pytest -m "not e2e"` (the quick suite, ~1-2 min) must start no MLflow-importing
interpreter per test: starting one costs ~10 s of CPU on this machine. Anything that logs a real model,
serves a real app, or imports an agent in a fresh interpreter is marked `@pytest.mark.e2e`.

Reuse, do not rebuild (everything expensive is built once per session, here):
- `standin_workspace`: THE workspace stand-in of the session. Never start another with `standin.running()`
  unless the test is about the stand-in's own options (latency, a stopped workspace).
- `registered_example(name)`: the example logged and registered once per session, shared by the xdist
  workers (logging takes ~30 s).
- `endpoint_for(name)`: a serving endpoint on the stand-in serving that registration.
- `downloaded_example(name)`: a private copy of a working directory holding the example's download; the
  download itself runs once per example per session. Edit the copy freely.
- `migrate(*argv, env=..., cwd=...)`: one `migrate` command called in-process (`scripts.cli.main`), with its
  exit code, stdout and stderr, as `run_migrate` gives them. Prefer it.
- `run_migrate(...)`: the same command in its own interpreter. Use it only where the process is what the test
  proves: Ctrl-C, a real exit of a real process, no process left behind, `@invoke` registering once per process.
Quick tests build their inputs from `tests/fixtures/` with the step functions (`scaffold`, `migrate_code`, ...)
called directly; e2e tests take the session fixtures above.

Also shared per session: compiled modules (one PYTHONPYCACHEPREFIX, below), the code check's import probes
(`probe_cache_of_the_session`) and the original model's answers to smoke (scripts/smoke_original.py), both in
the session's own cache folder. A wait that only proves a bound takes a small bound: the network timeout
(MIGRATE_NETWORK_TIMEOUT_SECONDS), the stop's grace (`processes.STOP_GRACE_SECONDS`). `@pytest.mark.fuzz`
tests are e2e too (large budgets), so the quick suite runs only the small ones.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import io
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

# A suite started in the background (`nohup`, `&` in a script) inherits SIGINT ignored, and so would every process
# it starts: Python then installs no KeyboardInterrupt handler and the Ctrl-C tests cannot press Ctrl-C.
signal.signal(signal.SIGINT, signal.default_int_handler)


def _share_compiled_bytecode() -> None:
    """Every interpreter of the session reads and writes compiled modules in one cache of the session.

    With PYTHONDONTWRITEBYTECODE set (as on this machine and in CI) and no `.pyc` installed, each interpreter
    the tests start compiled MLflow, pandas and the SDK from source again: ~4-5 s of CPU per interpreter, and the
    suite starts over a hundred (probes, servers, `migrate` in its own process). A PYTHONPYCACHEPREFIX outside
    the repository and the environment keeps source trees free of `__pycache__` (why the variable is set) and
    lets the first interpreter compile for all. A prefix the user chose is kept."""
    if sys.pycache_prefix:  # set from PYTHONPYCACHEPREFIX, which the children inherit
        return
    prefix = tempfile.mkdtemp(prefix="agent-migrate-tests-pycache-")
    atexit.register(shutil.rmtree, prefix, ignore_errors=True)
    os.environ["PYTHONPYCACHEPREFIX"] = prefix
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    sys.pycache_prefix, sys.dont_write_bytecode = prefix, False


_share_compiled_bytecode()  # before the imports below, so this interpreter's compiled modules are shared too
# The servers the tests start themselves run offline too: MLflow's model catalog from its package, not a
# download retried for ~8 s on each server's first traced call (scripts/app_process.local_run_environment).
from scripts.app_process import MODEL_CATALOG_SETTING  # noqa: E402 (after the bytecode prefix is set)

os.environ.setdefault(MODEL_CATALOG_SETTING, "")

from scripts.demo import load_example_module

REPO = Path(__file__).resolve().parent.parent


def run_migrate(*argv: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """One `migrate` command in its own process, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "scripts.cli", *argv], capture_output=True, text=True,
                          env=env, cwd=cwd or REPO)


@contextlib.contextmanager
def _environment(env: dict | None, cwd: Path | None):
    """`env` as the whole of os.environ and `cwd` as the current folder, both restored afterwards."""
    saved_env, saved_cwd = dict(os.environ), Path.cwd()
    try:
        if env is not None:
            os.environ.clear()
            os.environ.update(env)
        os.chdir(cwd or REPO)
        yield
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)


def migrate_in_process(*argv: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """One `migrate` command through `scripts.cli.main` in this interpreter: no start-up cost, same result."""
    from scripts.cli import main

    stdout, stderr = io.StringIO(), io.StringIO()
    with _environment(env, cwd), contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            code = main(list(argv))
        except SystemExit as exit_:  # argparse's usage errors
            code = exit_.code if isinstance(exit_.code, int) else 2
    return subprocess.CompletedProcess(["migrate", *argv], code, stdout.getvalue(), stderr.getvalue())


def pytest_configure(config):
    """Collection imports MLflow, the SDK and every test module: the cyclic collector stays off until it is
    done, as in the app's start (agent_server/start_server.py), in the process that collects (each xdist
    worker; the controller of an xdist run collects nothing)."""
    if hasattr(config, "workerinput") or not config.getoption("numprocesses", None):
        gc.disable()


def pytest_collection_finish(session):
    if not gc.isenabled():
        gc.collect()
        gc.freeze()
        gc.enable()


def pytest_collection_modifyitems(config, items):
    """The fuzz tests' large budgets (`@pytest.mark.fuzz`) belong to the whole suite, not the quick one: they
    are marked e2e too, so `-m "not e2e"` leaves them out (the quick suite runs each with a small budget).

    Modules run longest first (`serial_minutes`). pytest-xdist with --dist loadfile gives each worker whole
    modules in this order: a six-minute module handed out last ran alone on one worker while the other had
    finished, which cost the whole suite minutes on two cores."""
    for item in items:
        if item.get_closest_marker("fuzz") is not None and item.get_closest_marker("e2e") is None:
            item.add_marker(pytest.mark.e2e)
    items.sort(key=serial_minutes, reverse=True)  # stable: the order within a module and among the rest stays


def serial_minutes(item) -> float:
    marker = item.get_closest_marker("serial_minutes")
    return float(marker.args[0]) if marker else 0.0


@pytest.fixture
def migrate():
    return migrate_in_process


@pytest.fixture(scope="session", autouse=True)
def probe_cache_of_the_session(tmp_path_factory):
    """The code check remembers clean import probes in the user's cache folder (checks/probe_cache.py): the
    tests share one of their own, so an app imported once is not imported again, and none of the user's."""
    import os

    # uv keeps its cache under XDG_CACHE_HOME too: pinned first, or every session downloaded and unpacked the
    # apps' packages again (~700 MB) for setup's locks and the app environments, then deleted them.
    if "UV_CACHE_DIR" not in os.environ:
        os.environ["UV_CACHE_DIR"] = users_uv_cache()
    previous = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if previous is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = previous


def users_uv_cache() -> str:
    """The cache folder uv uses for this user now (`uv cache dir`: its settings, UV_CACHE_DIR, XDG_CACHE_HOME)."""
    from scripts.processes import uv_command

    completed = subprocess.run([*uv_command(), "cache", "dir"], capture_output=True, text=True, check=True)
    return completed.stdout.strip()


@pytest.fixture(scope="session")
def standin_workspace():
    import standin

    with standin.running() as workspace:
        yield workspace


def session_root(tmp_path_factory) -> Path:
    """The folder every process of this session shares: under pytest-xdist each worker has a base folder of
    its own inside the run's folder, which is the shared one."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@contextlib.contextmanager
def exclusive(lock_path: Path):
    """The block runs in one process of the session at a time (an flock on `lock_path`)."""
    import fcntl

    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@pytest.fixture(scope="session")
def registered_example(standin_workspace, tmp_path_factory):
    """`registered_example(name)`: the example logged and registered once per session, by whichever xdist
    worker asks first (the others read where it is); where it is."""
    import json

    catalog = load_example_module("catalog")
    registry_dir = session_root(tmp_path_factory) / "registry"
    registry_dir.mkdir(exist_ok=True)
    registered: dict[str, dict] = {}

    def register(name: str) -> dict:
        if name not in registered:
            record = registry_dir / f"{name}.registered.json"
            with exclusive(registry_dir / ".lock"):  # one SQLite registry: one writer at a time
                if not record.is_file():
                    where = catalog.register_example(name, registry_dir, standin_workspace.environ())
                    record.write_text(json.dumps(where), encoding="utf-8")
                registered[name] = json.loads(record.read_text(encoding="utf-8"))
        return registered[name]

    return register


@pytest.fixture(scope="session")
def endpoint_for(standin_workspace, registered_example):
    """`endpoint_for(name)`: a serving endpoint on the stand-in serving the registered example."""
    import standin

    def endpoint(name: str) -> str:
        registered = registered_example(name)
        endpoint_name = f"{name.replace('_', '-')}-endpoint"
        standin_workspace.add_endpoint(standin.endpoint_json(endpoint_name, registered["name"],
                                                             registered["version"]))
        return endpoint_name

    return endpoint


@pytest.fixture(scope="session")
def downloaded_example(standin_workspace, registered_example, tmp_path_factory):
    """`downloaded_example(name)`: a new working directory of its own holding the example's download.

    The download runs once per example per session; each call gets a copy, so a test may edit it."""
    downloads: dict[str, Path] = {}

    def download(name: str) -> Path:
        if name not in downloads:
            registered = registered_example(name)
            workdir = tmp_path_factory.mktemp(f"download-{name}")
            # In-process: the download runs in a child interpreter of its own all the same (scripts/model_fetch.py).
            completed = migrate_in_process("download", "--model-uri", registered["model_uri"],
                                           "--registry-uri", registered["registry_uri"],
                                           "--tracking-uri", registered["tracking_uri"], "--workdir", str(workdir),
                                           env=standin_workspace.environ())
            assert completed.returncode == 0, completed.stdout + completed.stderr
            downloads[name] = workdir
        copy = tmp_path_factory.mktemp(f"work-{name}") / "work"
        shutil.copytree(downloads[name], copy, symlinks=True)
        return copy

    return download
