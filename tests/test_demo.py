"""The offline demo end to end: what the README's first command does on a fresh machine."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from scripts import demo
from tests.conftest import migrate_in_process

pytestmark = pytest.mark.e2e


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
