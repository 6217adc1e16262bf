"""`migrate download` when things go wrong: an unreachable workspace or registry, a broken manifest, Ctrl-C.

The model comes from the stand-in's MLflow registry over HTTP (standin/registry.py), so MLflow's own client
downloads it, and the stand-in can slow the download down to stand for a slow network.
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import pytest

from scripts import cli
from scripts.layout import MigrationLayout
from standin.registry import registry_env, serve_model
from tests.conftest import run_migrate

MODEL_FOLDER = Path(__file__).parent / "fixtures" / "analyze" / "openai_tools"
CONFLICT = "<<<<<<< HEAD\n{}\n=======\n{}\n>>>>>>> theirs\n"


@pytest.fixture
def served_model(standin_workspace, tmp_path):
    """A model version on the stand-in's registry: (its URI, `migrate download` arguments, the environment)."""
    folder = tmp_path / "published"
    shutil.copytree(MODEL_FOLDER, folder)
    (folder / "requirements.txt").write_text("mlflow==3.17.2\n")
    name = f"main.agents.m{uuid.uuid4().hex[:8]}"
    registry = serve_model(standin_workspace, name, "1", folder)
    argv = ["--model-uri", f"models:/{name}/1", "--registry-uri", registry, "--tracking-uri", registry]
    return folder, argv, {**standin_workspace.environ(), **registry_env(standin_workspace)}


def download(workdir: Path, served, *extra: str):
    _, argv, env = served
    return run_migrate("download", *argv, *extra, "--workdir", str(workdir), env=env)


def test_a_corrupted_manifest_is_a_finding_and_force_replaces_it(served_model, tmp_path, capsys):
    workdir = tmp_path / "work"
    first = download(workdir, served_model)
    assert first.returncode == 0, first.stderr
    manifest = MigrationLayout.for_workdir(workdir).source / "manifest.json"
    manifest.write_text(CONFLICT)

    assert cli.main(["check", "download", "--workdir", str(workdir)]) == 1
    out = capsys.readouterr().out
    assert "SRC009" in out and "manifest.json cannot be read" in out and "download --force" in out

    refused = download(workdir, served_model)
    assert refused.returncode == 1, refused.stderr
    assert "cannot be read" in refused.stderr and "--force" in refused.stderr

    forced = download(workdir, served_model, "--force")
    assert forced.returncode == 0, forced.stderr
    assert forced.stdout.startswith("replaced:")
    assert cli.main(["check", "download", "--workdir", str(workdir)]) == 0


@pytest.mark.parametrize("broken", ["[]", '{"model": {"uri": "models:/a/1"}, "digest": "x", "files": []}', "\udcff"])
def test_a_manifest_of_the_wrong_shape_is_a_finding_too(served_model, tmp_path, capsys, broken):
    workdir = tmp_path / "work"
    assert download(workdir, served_model).returncode == 0
    manifest = MigrationLayout.for_workdir(workdir).source / "manifest.json"
    manifest.write_bytes(broken.encode("utf-8", "surrogateescape"))
    assert cli.main(["check", "download", "--workdir", str(workdir)]) == 1
    assert "SRC009" in capsys.readouterr().out
