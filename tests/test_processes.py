"""The one process module, with real subprocesses: groups are stopped on timeout, Ctrl-C and error, a second
Ctrl-C during the stop orphans nothing, and a failure shows the command, exit code and both streams."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from scripts import processes

# A parent that starts a grandchild in the same group, writes the grandchild's pid, and ignores SIGTERM
# (as a stuck agent, or `uv run` forwarding nothing, would).
STUBBORN_FAMILY = textwrap.dedent("""
    import signal, subprocess, sys, time
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    child = subprocess.Popen([sys.executable, "-c",
                              "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(300)"])
    open(sys.argv[1], "w").write(str(child.pid))
    print("to stdout", flush=True)
    print("to stderr", file=sys.stderr, flush=True)
    time.sleep(300)
""")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes (its parent has not reaped it yet).
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(")")[-1].split()[0] == "Z")


# The family ignores SIGTERM, so every stop waits out the grace before its SIGKILL: the tests prove the SIGKILL
# comes and reaches the whole group, which a short grace proves as well as the default 5 s.
SHORT_GRACE = 1.0


@pytest.fixture(autouse=True)
def short_grace(monkeypatch):
    monkeypatch.setattr(processes, "STOP_GRACE_SECONDS", SHORT_GRACE)


def gone(pid: int, seconds: float = 5) -> bool:
    """Whether `pid` is dead within `seconds`: a SIGKILLed process dies soon after the signal, not at once."""
    deadline = time.monotonic() + seconds
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not alive(pid)


def wait_for(path: Path, seconds: float = 30) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists() and path.read_text():
            return path.read_text()
        time.sleep(0.05)
    raise AssertionError(f"{path} was not written")


def test_a_timeout_kills_the_whole_group_and_keeps_what_it_printed(tmp_path):
    pid_file = tmp_path / "grandchild.pid"
    started = time.monotonic()
    with pytest.raises(processes.CommandTimedOut) as raised:
        processes.run([sys.executable, "-c", STUBBORN_FAMILY, str(pid_file)], timeout=3)
    assert time.monotonic() - started < 3 + 2 * processes.STOP_GRACE_SECONDS + 5
    grandchild = int(pid_file.read_text())
    assert gone(grandchild)
    message = str(raised.value)
    assert "did not finish within 3s" in message and "to stdout" in message and "to stderr" in message
    assert STUBBORN_FAMILY.splitlines()[1] in message  # the command itself


def test_a_failure_shows_the_command_exit_code_and_both_streams():
    script = "import sys; print('out line'); print('err line', file=sys.stderr); sys.exit(7)"
    with pytest.raises(processes.CommandFailed) as raised:
        processes.run([sys.executable, "-c", script])
    error = raised.value
    assert error.returncode == 7 and "exited with code 7" in str(error)
    assert "out line" in str(error) and "err line" in str(error) and "sys.exit(7)" in str(error)
    assert processes.run([sys.executable, "-c", script], check=False).returncode == 7


def test_an_error_in_the_block_stops_the_group(tmp_path):
    pid_file = tmp_path / "grandchild.pid"
    with pytest.raises(RuntimeError):
        with processes.running([sys.executable, "-c", STUBBORN_FAMILY, str(pid_file)]) as process:
            grandchild = int(wait_for(pid_file))
            raise RuntimeError("the caller failed")
    assert process.poll() is not None and gone(grandchild)


# Runs `processes.run` on the stubborn family in a child interpreter, so the test can Ctrl-C that interpreter.
CTRL_C_RUNNER = textwrap.dedent("""
    import sys
    from scripts import processes
    processes.STOP_GRACE_SECONDS = {grace}
    try:
        processes.run([sys.executable, "-c", sys.argv[1], sys.argv[2]])
    except KeyboardInterrupt:
        sys.exit(130)
""")


@pytest.mark.parametrize("presses", [1, 2])
def test_ctrl_c_stops_the_group_even_when_pressed_again_during_the_stop(tmp_path, presses):
    pid_file = tmp_path / "grandchild.pid"
    runner = subprocess.Popen([sys.executable, "-c", CTRL_C_RUNNER.format(grace=SHORT_GRACE), STUBBORN_FAMILY,
                               str(pid_file)], cwd=Path(__file__).resolve().parent.parent)
    grandchild = int(wait_for(pid_file))
    try:
        runner.send_signal(signal.SIGINT)
        if presses == 2:
            time.sleep(SHORT_GRACE / 3)  # inside the SIGTERM grace period, which the family ignores
            runner.send_signal(signal.SIGINT)
        assert runner.wait(timeout=30) == 130
        assert gone(grandchild)
    finally:
        runner.kill()
        if alive(grandchild):
            os.kill(grandchild, signal.SIGKILL)


def test_the_environment_of_an_app_command_is_the_apps(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text("FROM_DOTENV=1\nKEPT=dotenv\n")
    monkeypatch.setenv("VIRTUAL_ENV", "/tool/.venv")
    monkeypatch.setenv("KEPT", "ours")
    environment = processes.child_environment(for_app=True, dotenv=tmp_path / ".env", without=("HOME",),
                                              overrides={"EXTRA": "x"})
    assert "VIRTUAL_ENV" not in environment and "HOME" not in environment
    assert environment["FROM_DOTENV"] == "1" and environment["KEPT"] == "ours" and environment["EXTRA"] == "x"
    assert processes.child_environment()["VIRTUAL_ENV"] == "/tool/.venv"
