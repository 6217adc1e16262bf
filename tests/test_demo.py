"""The offline demo end to end: what the README's first command does on a fresh machine."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from scripts import demo
from tests.conftest import REPO, migrate_in_process

pytestmark = [pytest.mark.e2e, pytest.mark.serial_minutes(6.5)]


def migrate(*argv: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "scripts.cli", *argv], capture_output=True, text=True, env=env)


@pytest.fixture(scope="module")
def demo_workdir(tmp_path_factory, registered_example):
    workdir = tmp_path_factory.mktemp("demo")
    # The demo reuses a registration recorded in its workdir (test_demo_plan proves it records its own): give it
    # the session's, so the example is logged once per session rather than once more here.
    (workdir / demo.REGISTRY_DIR).mkdir()
    (workdir / demo.REGISTRY_DIR / "openai_tools.json").write_text(json.dumps(registered_example("openai_tools")))
    completed = migrate("demo", "--workdir", str(workdir))
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "verdict: PASS" in completed.stdout
    assert str(workdir) in completed.stdout
    return workdir


def test_demo_lays_out_a_working_directory(demo_workdir):
    assert (demo_workdir / "original_mlflow_model" / "MLmodel").is_file()
    for app_name in ("openai-tools-app", "openai-tools-async-app"):
        app = demo_workdir / app_name
        reports = {path.stem for path in (app / "migration" / "reports").iterdir()}
        assert {"download", "analyze", "scaffold", "code", "setup", "smoke", "resources"} <= reports
        assert (app / "migration" / "source" / "manifest.json").is_file()
        assert (app / "uv.lock").is_file() and "resources:" in (app / "databricks.yml").read_text()


@pytest.mark.parametrize("app_name, mode, handler", [("openai-tools-app", "sync", "async def"),
                                                     ("openai-tools-async-app", "async", "await client.chat")])
def test_both_apps_answer_like_the_original(demo_workdir, app_name, mode, handler):
    app = demo_workdir / app_name
    code = json.loads((app / "migration" / "reports" / "code.json").read_text())
    assert code["payload"]["mode"] == mode
    assert "@invoke()" in (app / "agent_server" / "agent.py").read_text()
    assert handler in (app / "agent_server" / "agent.py").read_text()
    smoke = json.loads((app / "migration" / "reports" / "smoke.json").read_text())
    assert smoke["status"] == "ok", smoke["findings"]
    assert smoke["payload"]["comparison"] == "exact"
    assert smoke["payload"]["parity"]["status"] == "ran"
    # The tool call, its result and the answer, with the custom_outputs predict carried from custom_inputs.
    answer = smoke["payload"]["invoke"]["body"]
    assert [item["type"] for item in answer["output"]] == ["function_call", "function_call_output", "message"]
    assert answer["custom_outputs"] == {"session": "demo"}


def processes_working_in(folder) -> list[str]:
    """The command lines of the processes whose working directory is `folder` or inside it (Linux /proc)."""
    import os
    from pathlib import Path

    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cwd = Path(os.readlink(entry / "cwd"))
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if cwd == folder or folder in cwd.parents:
            found.append(f"{entry.name}: {command}")
    return found


def test_the_demo_leaves_no_process_behind(demo_workdir):
    """Every server, original and probe the demo's steps started (in its apps, in its folders) is gone."""
    assert processes_working_in(demo_workdir.resolve()) == []


def test_demo_runs_again_in_the_same_workdir(demo_workdir):
    completed = migrate("demo", "--workdir", str(demo_workdir), "--mode", "sync")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "openai-tools-async-app" not in completed.stdout


def test_check_turns_red_when_a_downloaded_file_is_altered(demo_workdir, tmp_path, standin_workspace):
    # The app's agent builds its workspace client at import, so the code check needs a workspace to talk to.
    env = standin_workspace.environ()
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(demo_workdir, copy)
    green = migrate_in_process("check", "--app", str(copy / "openai-tools-app"), "--json", env=env)
    assert green.returncode == 0, green.stdout + green.stderr

    mlmodel = copy / "original_mlflow_model" / "MLmodel"
    mlmodel.write_text(mlmodel.read_text() + "\n# edited by hand\n")
    red = migrate_in_process("check", "--app", str(copy / "openai-tools-app"), "--json", env=env)
    assert red.returncode == 1
    findings = json.loads(red.stdout)["findings"]
    assert any(finding["path"].endswith("MLmodel") and finding["severity"] == "error" for finding in findings)


@pytest.mark.parametrize("app_name", ["openai-tools-app", "openai-tools-async-app"])
def test_the_demo_replays_the_endpoints_logged_traffic_and_every_request_agrees(demo_workdir, app_name):
    replay = json.loads((demo_workdir / app_name / "migration" / "reports" / "replay.json").read_text())
    assert replay["status"] != "error", replay["findings"]
    totals = replay["payload"]["totals"]
    # Five rows logged: one failed (500) and one duplicate are left out; one came in dataframe_records.
    assert totals["replayed"] == totals["agreed"] == 3 and totals["older_formats"] == 1
    assert all(record["compared_with"] == ["original"] for record in replay["payload"]["requests"])
    assert replay["payload"]["comparison"] == "exact"
    replay_set = demo_workdir / replay["payload"]["set"]["path"]
    assert replay_set.is_file() and (demo_workdir / app_name) not in replay_set.parents


def test_a_changed_agent_makes_replay_fail_with_the_first_difference(demo_workdir, tmp_path, standin_workspace,
                                                                      registered_example):
    import shutil

    from scripts import replay_demo
    from scripts.demo import EXAMPLES_DIR

    copy = tmp_path / "copy"
    shutil.copytree(demo_workdir, copy, ignore=shutil.ignore_patterns("openai-tools-async-app"))
    app = copy / "openai-tools-app"
    agent = app / "agent_server" / "agent.py"
    agent.write_text(agent.read_text().replace("custom_outputs=request.custom_inputs",
                                               'custom_outputs={"changed": True}'))
    warehouse = replay_demo.serve_logged_traffic(standin_workspace, "openai-tools-endpoint",
                                                 registered_example("openai_tools"), EXAMPLES_DIR / "openai_tools")
    env = standin_workspace.environ()
    completed = migrate_in_process("replay", "--app", str(app), "--warehouse-id", warehouse, "--limit", "1",
                                   "--python", sys.executable, "--workdir", str(copy), env=env)
    assert completed.returncode == 1, completed.stdout + completed.stderr
    assert "error: [RPL011]" in completed.stdout and "first difference at $.custom_outputs" in completed.stdout
    assert "the quick brown fox" not in completed.stdout + completed.stderr  # no request body is printed
    report = json.loads((app / "migration" / "reports" / "replay.json").read_text())
    assert report["payload"]["totals"]["differed"] == 1
    checked = migrate_in_process("check", "replay", "--app", str(app), "--json", env=env)
    assert checked.returncode == 1 and "RPL011" in checked.stdout


# ---------------------------------------------------------------------------------------------------- the benchmark

BENCHMARK_FIGURES = {"rps", "p50_ms", "p99_ms", "ratio_to_ideal", "errors", "cpu_ms_per_request", "machine_busy"}


def test_tiny_benchmark_of_the_demos_apps_prints_the_json_line(demo_workdir):
    """The concurrency benchmark runs end to end on the apps the demo built (`--apps-from`, so they are built
    once per session) and ends with its JSON line. No timing is asserted (figures depend on the machine): only
    that every mode serves and the line has its shape. tests/test_benchmark.py has the quick tests."""
    completed = subprocess.run([sys.executable, "benchmarks/concurrency.py", "--concurrency", "2", "--requests", "4",
                                "--latency-ms", "10", "--apps-from", str(demo_workdir)],
                               cwd=REPO, capture_output=True, text=True, timeout=1800)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    modes = ("ceiling", "original", "hand_sync", "hand_async", "sync", "sync_2w", "async")
    assert {"concurrency", "latency_ms", "ratios", *modes} <= set(result)
    assert result["concurrency"] == 2 and result["latency_ms"] == 10 and result["trace_store"] == "http"
    for mode in modes:
        assert BENCHMARK_FIGURES <= set(result[mode]), mode
        assert result[mode]["errors"] == 0, result[mode]
        # Where the CPU went, read from /proc for every mode (a few requests of the ceiling may take less
        # than one clock tick of the app's CPU: 0 is a reading, None would be none).
        used = result[mode]["cpu_ms_per_request"]
        assert set(used) == {"app", "traces", "driver", "rest"}, result[mode]
        assert all(value is not None and value >= 0 for value in used.values()), result[mode]
    # The original (~20 ms of CPU a request) surely shows its own: the figure is the server's, not a constant.
    assert result["original"]["cpu_ms_per_request"]["app"] > 0, result["original"]
    assert result["llm_calls_per_request"] == 2  # the example's tool call, then its answer
    # Every served mode against the original, its hand-migration peer and the ideal.
    assert set(result["ratios"]) == set(modes) - {"ceiling", "original"}
    assert result["ratios"]["async"]["to_hand"] == round(result["async"]["rps"] / result["hand_async"]["rps"], 2)
    assert result["ratios"]["sync_2w"]["to_hand"] == round(result["sync_2w"]["rps"] / result["hand_sync"]["rps"], 2)
