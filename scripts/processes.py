"""Every subprocess the harness starts, started and stopped one way (the pattern of pre-commit's `cmd_output_b`).

- Each runs in its own process group (`uv run` and `mlflow models serve` start the real work as grandchildren,
  which a stop of the direct child alone would leave behind).
- It is stopped as a group on timeout, error, Ctrl-C and SIGTERM: SIGTERM, a grace period, then SIGKILL to the
  group. The stop cannot be interrupted: a second Ctrl-C while it runs is held until the group is dead, then
  raised, so nothing is orphaned holding a port (issue 14).
- A command that fails raises `CommandFailed`, whose text shows the command, the exit code and both streams.

The environment of a child comes from `child_environment`, and uv from `uv_command`; nothing else builds them.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping
from importlib.util import find_spec
from pathlib import Path

from scripts.core.errors import MigrateError

STOP_GRACE_SECONDS = 5.0
# Set by `uv run` for this tool's own environment; an app has (and locks) its own.
TOOL_ENVIRONMENT_VARIABLES = ("VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT")
SHOWN_STREAM_CHARACTERS = 4000


class CommandFailed(Exception):
    """A command exited non-zero (or was stopped at its timeout); its text carries everything to diagnose it."""

    def __init__(self, argv: list[str], returncode: int | None, stdout: str, stderr: str,
                 timeout: float | None = None):
        self.argv, self.returncode, self.stdout, self.stderr, self.timeout = argv, returncode, stdout, stderr, timeout
        super().__init__(str(self))

    def __str__(self) -> str:
        what = (f"did not finish within {self.timeout:g}s and was stopped" if self.timeout is not None
                else f"exited with code {self.returncode}")
        return (f"`{shlex.join(self.argv)}` {what}\n"
                f"stdout:\n{_shown(self.stdout)}\nstderr:\n{_shown(self.stderr)}")

    @property
    def output(self) -> str:
        """Both streams, for a message that quotes what the command said (stderr first: errors live there)."""
        return "\n".join(part.strip() for part in (self.stderr, self.stdout) if part and part.strip())


class CommandTimedOut(CommandFailed):
    """The command outlived its timeout; its group was stopped."""


def _shown(text: str | None) -> str:
    text = (text or "").rstrip()
    if not text:
        return "  (empty)"
    if len(text) > SHOWN_STREAM_CHARACTERS:
        text = "…" + text[-SHOWN_STREAM_CHARACTERS:]
    return "\n".join("  " + line for line in text.splitlines())


# ---------------------------------------------------------------------------------------------------- signals


class _HeldSignals:
    """Inside the block, Ctrl-C and SIGTERM are recorded instead of raised; on leaving it, a held one is
    raised as KeyboardInterrupt, unless an exception is already on its way out: then the cleanup that follows
    (other children, temp folders) runs too, and the run ends with that exception anyway."""

    HELD = (signal.SIGINT, signal.SIGTERM)

    def __enter__(self) -> _HeldSignals:
        self.received: list[int] = []
        self.previous: dict[int, object] = {}
        if threading.current_thread() is threading.main_thread():
            for signum in self.HELD:
                self.previous[signum] = signal.signal(signum, lambda number, frame: self.received.append(number))
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        if self.received and exc_type is None and sys.exc_info()[0] is None:
            raise KeyboardInterrupt(f"signal {self.received[0]} during cleanup")


def uninterruptible() -> _HeldSignals:
    return _HeldSignals()


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM into KeyboardInterrupt for the block, so `finally` clauses stop children then too."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# ---------------------------------------------------------------------------------------------------- start and stop


def start(argv: list[str], *, cwd: Path | None = None, env: Mapping[str, str] | None = None,
          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text: bool = True) -> subprocess.Popen:
    """Start `argv` as the leader of a new process group, stdin closed (a child never waits for the user)."""
    return subprocess.Popen(argv, cwd=cwd, env=dict(os.environ if env is None else env), stdout=stdout,
                            stderr=stderr, stdin=subprocess.DEVNULL, text=text, start_new_session=True)


def _signal_group(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


def stop(process: subprocess.Popen, grace: float | None = None) -> None:
    """Stop the process's whole group: SIGTERM, then SIGKILL after `grace` seconds (STOP_GRACE_SECONDS, read
    when called, so a test can shorten a wait it does not prove anything with). Not interruptible."""
    grace = STOP_GRACE_SECONDS if grace is None else grace
    with uninterruptible():
        if process.poll() is None:
            _signal_group(process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=grace)
        # Also when the leader is gone: a grandchild (uv run → python) may linger in the group.
        _signal_group(process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace)


@contextlib.contextmanager
def running(argv: list[str], **options) -> Iterator[subprocess.Popen]:
    """`start(argv, **options)` for the length of the block; the group is stopped however the block ends."""
    with sigterm_as_interrupt():
        process = start(argv, **options)
        try:
            yield process
        finally:
            stop(process)


def run(argv: list[str], *, cwd: Path | None = None, env: Mapping[str, str] | None = None,
        timeout: float | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """Run `argv` to its end and capture both streams (text).

    Raises CommandTimedOut after `timeout` seconds and CommandFailed on a non-zero exit when `check`; on
    those, on Ctrl-C and on any other error the whole group is stopped first.
    """
    with sigterm_as_interrupt():
        process = start(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            stop(process)
            stdout, stderr = _remaining_output(process)
            raise CommandTimedOut(argv, None, stdout, stderr, timeout) from None
        except BaseException:
            stop(process)
            raise
    if check and process.returncode != 0:
        raise CommandFailed(argv, process.returncode, stdout, stderr)
    return subprocess.CompletedProcess(argv, process.returncode, stdout, stderr)


def _remaining_output(process: subprocess.Popen) -> tuple[str, str]:
    try:
        stdout, stderr = process.communicate(timeout=STOP_GRACE_SECONDS)
    except (subprocess.TimeoutExpired, ValueError):
        return "", ""
    return stdout or "", stderr or ""


# ---------------------------------------------------------------------------------------------------- environment and uv


def child_environment(*, base: Mapping[str, str] | None = None, for_app: bool = False,
                      without: Iterable[str] = (), dotenv: Path | None = None,
                      overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a child process: `base` (default: ours), without `without`; for a command run in an
    app, without the variables that point uv at this tool's environment; plus the values of a `.env` file
    that are not set already, then `overrides`. Output is unbuffered, so logs show what happened last."""
    result = dict(os.environ if base is None else base)
    for name in (*without, *(TOOL_ENVIRONMENT_VARIABLES if for_app else ())):
        result.pop(name, None)
    if dotenv is not None and dotenv.is_file():
        from dotenv import dotenv_values

        for key, value in dotenv_values(dotenv).items():
            if value is not None:
                result.setdefault(key, value)
    result.update(overrides or {})
    result.setdefault("PYTHONUNBUFFERED", "1")
    return result


def uv_command() -> list[str]:
    """`uv` on PATH, else the uv that runs us (`uv run` sets UV), else the uv module of this interpreter."""
    if shutil.which("uv"):
        return ["uv"]
    if os.environ.get("UV") and os.path.isfile(os.environ["UV"]):
        return [os.environ["UV"]]
    if find_spec("uv") is not None:
        return [sys.executable, "-m", "uv"]
    raise MigrateError("uv is not installed", "install it with `pip install uv` (https://docs.astral.sh/uv/)")
