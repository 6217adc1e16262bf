"""The offline demo end to end: what the README's first command does on a fresh machine."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.e2e


def migrate(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "scripts.cli", *argv], capture_output=True, text=True)


@pytest.fixture(scope="module")
def demo_workdir(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("demo")
    completed = migrate("demo", "--workdir", str(workdir))
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "verdict: PASS" in completed.stdout
    assert str(workdir) in completed.stdout
    return workdir


def test_demo_lays_out_a_working_directory(demo_workdir):
    assert (demo_workdir / "original_mlflow_model" / "MLmodel").is_file()
    reports = demo_workdir / "migration" / "reports"
    assert {"download.json", "analyze.json"} <= {path.name for path in reports.iterdir()}
    assert (demo_workdir / "migration" / "source" / "manifest.json").is_file()


def test_demo_runs_again_in_the_same_workdir(demo_workdir):
    completed = migrate("demo", "--workdir", str(demo_workdir))
    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_check_turns_red_when_a_downloaded_file_is_altered(demo_workdir, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(demo_workdir, copy)
    green = migrate("check", "--workdir", str(copy), "--json")
    assert green.returncode == 0, green.stdout + green.stderr

    mlmodel = copy / "original_mlflow_model" / "MLmodel"
    mlmodel.write_text(mlmodel.read_text() + "\n# edited by hand\n")
    red = migrate("check", "--workdir", str(copy), "--json")
    assert red.returncode == 1
    findings = json.loads(red.stdout)["findings"]
    assert any(finding["path"].endswith("MLmodel") and finding["severity"] == "error" for finding in findings)
