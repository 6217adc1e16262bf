"""Run an HTTP server (the migrated app, or `mlflow models serve`) as a child process for as long as a block runs.

    with serving(command, health_path="/health") as server:
        httpx.post(f"{server.url}/invocations", ...)

The server runs in its own process group on a port chosen here, its output goes to a log file (never a
pipe nobody reads: a full pipe stalls the server), and the block waits for its health route with a deadline.
When the block ends, by success, error, Ctrl-C or SIGTERM, the whole group is stopped: `uv run` starts
the server as a grandchild, so stopping only the direct child would leave it behind.
"""

from __future__ import annotations

import contextlib
import re
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from scripts import processes

LOCALHOST = "127.0.0.1"
DEFAULT_START_TIMEOUT = 120.0
LOG_TAIL_LINES = 30
# A Python traceback frame: `  File "/path/to/module.py", line 12, in <module>`
TRACEBACK_FRAME = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+)')
PORT_IN_USE = re.compile(r"address already in use|Errno 98|Errno 48", re.IGNORECASE)


@dataclass(frozen=True)
class ServerCommand:
    """How to start a server: `argv(port)` gives the command line for a port; where and with what environment."""

    argv: Callable[[int], list[str]]
    cwd: Path
    env: Mapping[str, str]
    health_path: str = "/health"
    description: str = "server"


@dataclass(frozen=True)
class FailedFrame:
    """Where a server's start failed: the deepest traceback frame in the app's own files (else the deepest)."""

    file: str
    line: int
    error: str


@dataclass
class ServerNotReady(Exception):
    """The server exited, or never answered its health route, before the deadline."""

    reason: str  # "exited", "deadline" or "port_taken"
    message: str
    log_tail: list[str] = field(default_factory=list)
    failed_at: FailedFrame | None = None

    def __str__(self) -> str:
        return self.message


@dataclass
class RunningServer:
    url: str
    port: int
    pid: int
    log_path: Path
    command: list[str]

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> list[str]:
        return read_tail(self.log_path, lines)


def with_compiled_modules(env: Mapping[str, str]) -> dict[str, str]:
    """`env` for a Python server or model run, where compiled modules are kept between runs.

    With PYTHONDONTWRITEBYTECODE set and no PYTHONPYCACHEPREFIX, every start compiled MLflow, pandas and the
    agent's libraries from source again (~5 s of CPU on a small machine, each time smoke starts the app or the
    original). The compiled modules go to the user's cache folder instead, never into the app or its .venv,
    which is what the variable keeps clean."""
    result = dict(env)
    if result.get("PYTHONDONTWRITEBYTECODE") and not result.get("PYTHONPYCACHEPREFIX"):
        base = result.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        result.pop("PYTHONDONTWRITEBYTECODE")
        result["PYTHONPYCACHEPREFIX"] = str(Path(base) / "agent-migrate" / "pycache")
    return result


# MLflow's tracing prices each LLM span from a model catalog it fetches from GitHub on a process's first traced
# call, retrying with backoff (3 tries, up to 5 s each): offline, every app server, original and probe this
# tool starts waited ~8 s on its first request. The empty value is MLflow's documented switch to its bundled
# catalog; a value the user set is kept. The answers do not depend on it, only a span's cost attribute.
MODEL_CATALOG_SETTING = "MLFLOW_MODEL_CATALOG_URI"


def local_run_environment(env: Mapping[str, str]) -> dict[str, str]:
    """`env` for a server, original or probe this tool runs on this machine: compiled modules kept between
    runs, and MLflow's model catalog read from its package instead of the network."""
    result = with_compiled_modules(env)
    result.setdefault(MODEL_CATALOG_SETTING, "")
    return result


def free_port() -> int:
    """A port nothing listens on now; the OS picks it, so parallel runs do not collide."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOCALHOST, 0))
        return probe.getsockname()[1]


def port_is_taken(port: int, reuse_address: bool = False) -> bool:
    """Whether `port` cannot be bound; `reuse_address` for a server that sets SO_REUSEADDR (the stand-in), to
    which a port the last run left in TIME_WAIT is still free."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        if reuse_address:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((LOCALHOST, port))
        except OSError:
            return True
    return False


def read_tail(path: Path, lines: int = LOG_TAIL_LINES) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    return text.splitlines()[-lines:]


def failed_frame(log_text: str, app_dir: Path | None = None) -> FailedFrame | None:
    """The file and line a traceback in `log_text` points at, preferring frames inside `app_dir`.

    Only the last traceback counts: an import error at start is the last thing a dying server prints.
    """
    lines = log_text.splitlines()
    starts = [index for index, line in enumerate(lines) if line.startswith("Traceback (most recent call last)")]
    if not starts:
        return None
    block = lines[starts[-1]:]
    frames = [(match["file"], int(match["line"])) for match in map(TRACEBACK_FRAME.match, block) if match]
    if not frames:
        return None
    error = next((line.strip() for line in reversed(block) if line.strip() and not line.startswith(" ")), "")
    chosen = frames[-1]
    if app_dir is not None:
        root = str(app_dir.resolve())
        inside = [frame for frame in frames if frame[0].startswith(root) and "/.venv/" not in frame[0]]
        if inside:
            chosen = inside[-1]
    return FailedFrame(chosen[0], chosen[1], error)


def stop(process: subprocess.Popen) -> None:
    """Stop the process's whole group (see `processes.stop`: SIGTERM, then SIGKILL; not interruptible)."""
    processes.stop(process)


def wait_until_healthy(process: subprocess.Popen, url: str, deadline: float) -> str | None:
    """None once `url` answers 200; otherwise why not ("exited" or "deadline")."""
    with httpx.Client(timeout=2.0) as client:
        while True:
            if process.poll() is not None:
                return "exited"
            try:
                if client.get(url).status_code == 200:
                    return None
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                return "deadline"
            time.sleep(0.2)


@contextlib.contextmanager
def serving(command: ServerCommand, *, port: int | None = None, start_timeout: float = DEFAULT_START_TIMEOUT,
            log_path: Path | None = None, app_dir: Path | None = None,
            on_start: Callable[[int, int], None] | None = None) -> Iterator[RunningServer]:
    """Start `command` on `port` (default: a free one), wait for its health route, and always stop it.

    Raises ServerNotReady when the port is taken, the server exits or the deadline passes; the server is
    stopped before that propagates. `on_start(pid, port)` is called once the process exists.
    """
    if port is not None and port_is_taken(port):
        raise ServerNotReady("port_taken", f"port {port} is already in use on {LOCALHOST}")
    port = port if port is not None else free_port()
    with contextlib.ExitStack() as stack:
        if log_path is None:
            log_path = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="migrate-server-"))) / "server.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        argv = command.argv(port)
        log = stack.enter_context(open(log_path, "w", encoding="utf-8"))
        process = stack.enter_context(processes.running(argv, cwd=command.cwd, env=command.env, stdout=log,
                                                        stderr=subprocess.STDOUT))
        if on_start is not None:
            on_start(process.pid, port)
        url = f"http://{LOCALHOST}:{port}"
        problem = wait_until_healthy(process, url + command.health_path, time.monotonic() + start_timeout)
        if problem is not None:
            stop(process)
            log.flush()
            text = log_path.read_text(encoding="utf-8", errors="replace")
            tail = text.splitlines()[-LOG_TAIL_LINES:]
            if problem == "exited" and PORT_IN_USE.search(text):
                raise ServerNotReady("port_taken", f"the {command.description} could not bind port {port}: "
                                     "it is already in use", tail)
            if problem == "exited":
                message = f"the {command.description} exited with code {process.returncode} before it was healthy"
            else:
                message = (f"the {command.description} did not answer GET {command.health_path} within "
                           f"{start_timeout:.0f}s")
            raise ServerNotReady(problem, message, tail, failed_frame(text, app_dir))
        yield RunningServer(url, port, process.pid, log_path, argv)
