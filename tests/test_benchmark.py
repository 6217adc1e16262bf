"""The concurrency benchmark's inputs. Its end-to-end run on the demo's apps is in tests/test_demo.py (it shares
the demo's module fixture); nothing here or there times anything."""

from __future__ import annotations

import os

import pytest

from benchmarks import concurrency, cpu, servers


def test_apps_from_and_registered_together_are_refused(capsys):
    with pytest.raises(SystemExit) as stopped:
        concurrency.parse_args(["--apps-from", "demo", "--registered", "registered.json"])
    assert stopped.value.code == 2
    assert "leave out --registered" in capsys.readouterr().err


def test_apps_from_a_folder_the_demo_did_not_build_names_the_fix(tmp_path):
    for source in (tmp_path / "missing", tmp_path / "empty"):
        (tmp_path / "empty").mkdir(exist_ok=True)
        with pytest.raises(servers.BenchmarkError, match="run `uv run migrate demo --workdir"):
            servers.demo_apps(source, tmp_path / "bench")
    assert not (tmp_path / "bench").exists()  # nothing copied before the source is known good


def test_the_hand_async_peer_is_the_conversion_without_its_transport(tmp_path):
    from scripts.demo import load_example_module

    transport = load_example_module("async_conversions").FAST_TRANSPORT
    agent = tmp_path / "agent.py"
    agent.write_text(f"client = AsyncOpenAI(base_url=url{transport})\n")
    servers.without_fast_transport(agent)
    assert agent.read_text() == "client = AsyncOpenAI(base_url=url)\n"
    with pytest.raises(servers.BenchmarkError, match="not there once"):
        servers.without_fast_transport(agent)


def test_the_original_finds_uvicorn_in_the_environment_it_runs_on(tmp_path):
    """`mlflow models serve` execs `uvicorn` by name: the benchmark run by a plain interpreter (PATH without the
    app environment's bin/) saw the original exit with `uvicorn: not found`."""
    apps = {"sync": tmp_path / "bench-sync"}
    command = servers.server_command("original", tmp_path, apps, {"PATH": "/usr/bin"}, "http://127.0.0.1:9")
    assert command.env["PATH"].split(":") == [str(apps["sync"] / ".venv" / "bin"), "/usr/bin"]
    assert command.argv(5000)[0] == str(apps["sync"] / ".venv" / "bin" / "python")


BURN_THEN_WAIT = """
import sys, time
end = time.process_time() + 0.4
while time.process_time() < end:
    pass
print("burnt", flush=True)
sys.stdin.read()
"""


@pytest.mark.skipif(not cpu.PROC.is_dir(), reason="reads /proc (Linux)")
def test_a_servers_cpu_counts_the_processes_it_started():
    """A `--workers 2` app serves from its supervisor's children and `mlflow server` from the uvicorn it
    starts: the CPU a mode used is its whole process tree's, read while the tree runs."""
    import subprocess
    import sys

    launcher = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {BURN_THEN_WAIT!r}])"
    parent = subprocess.Popen([sys.executable, "-c", launcher], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    try:
        before = cpu.read({"server": parent.pid})
        assert parent.stdout.readline() == "burnt\n"  # the grandchild has spent 0.4 s and still runs
        after = cpu.read({"server": parent.pid})
        assert cpu.tree_cpu_seconds(parent.pid) >= 0.35
        figures = cpu.spent(before, after, requests=4)
        assert figures["cpu_ms_per_request"]["server"] >= 0.3 * 1000 / 4
        assert figures["cpu_ms_per_request"]["rest"] >= 0
        assert 0 < figures["machine_busy"] <= 1
    finally:
        parent.communicate("", timeout=10)
    assert cpu.tree_cpu_seconds(parent.pid) is None  # ended: nothing to read, not a stale figure


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2,
                    reason="pins to CPUs (Linux, two or more)")
def test_app_cpus_runs_the_server_on_those_cpus_and_refuses_a_choice_that_leaves_none(capsys):
    import subprocess
    import sys

    first = min(os.sched_getaffinity(0))
    show = [sys.executable, "-c", "import os; print(sorted(os.sched_getaffinity(0)))"]
    printed = subprocess.run(cpu.pinned_argv(show, {first}), capture_output=True, text=True, check=True).stdout
    assert printed.strip() == f"[{first}]"
    assert concurrency.parse_args(["--app-cpus", str(first)]).app_cpus == {first}
    every = ",".join(map(str, sorted(os.sched_getaffinity(0))))
    for wrong, says in ((every, "leave at least one"), ("zero", "not a comma-separated list")):
        with pytest.raises(SystemExit) as stopped:
            concurrency.parse_args(["--app-cpus", wrong])
        assert stopped.value.code == 2 and says in capsys.readouterr().err
