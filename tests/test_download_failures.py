"""`migrate download` when things go wrong: an unreachable workspace or registry, a broken manifest, Ctrl-C.

The model comes from the stand-in's MLflow registry over HTTP (standin/registry.py), so MLflow's own client
downloads it, and the stand-in can slow the download down to stand for a slow network.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from scripts import cli
from scripts.core.layout import MigrationLayout
from standin.registry import registry_env, serve_model
from tests.conftest import REPO, migrate_in_process

MODEL_FOLDER = Path(__file__).parent / "fixtures" / "analyze" / "openai_tools"
# The bounds below are on the wait, measured against the same command answered at once (what starting the
# download's own interpreter costs); SLACK covers this 2-core machine's load. A bound proves the wait is the
# timeout's, not the SDK's or MLflow's own (minutes), so a small timeout proves it as well as a large one.
TIMEOUT = 2
SLACK = 20
CONFLICT = "<<<<<<< HEAD\n{}\n=======\n{}\n>>>>>>> theirs\n"


@pytest.fixture(scope="module")
def served_model(standin_workspace, tmp_path_factory):
    """A model version on the stand-in's registry: (its folder, `migrate download` arguments, the environment)."""
    folder = tmp_path_factory.mktemp("published") / "model"
    shutil.copytree(MODEL_FOLDER, folder)
    (folder / "requirements.txt").write_text("mlflow==3.17.2\n")
    name = f"main.agents.m{uuid.uuid4().hex[:8]}"
    registry = serve_model(standin_workspace, name, "1", folder)
    argv = ["--model-uri", f"models:/{name}/1", "--registry-uri", registry, "--tracking-uri", registry]
    return folder, argv, {**standin_workspace.environ(), **registry_env(standin_workspace)}


def download(workdir: Path, served, *extra: str):
    """`migrate download` in-process: the download itself runs in its own child process all the same."""
    _, argv, env = served
    return migrate_in_process("download", *argv, *extra, "--workdir", str(workdir), env=env)


@pytest.fixture(scope="module")
def downloaded_once(served_model, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("downloaded") / "work"
    completed = download(workdir, served_model)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return workdir


@pytest.fixture
def downloaded(downloaded_once, tmp_path):
    """A working directory of this test's own holding the served model's download (downloaded once per module)."""
    workdir = tmp_path / "work"
    shutil.copytree(downloaded_once, workdir, symlinks=True)
    return workdir


def test_a_corrupted_manifest_is_a_finding_and_force_replaces_it(served_model, downloaded, capsys):
    workdir = downloaded
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
def test_a_manifest_of_the_wrong_shape_is_a_finding_too(downloaded, capsys, broken):
    manifest = MigrationLayout.for_workdir(downloaded).source / "manifest.json"
    manifest.write_bytes(broken.encode("utf-8", "surrogateescape"))
    assert cli.main(["check", "download", "--workdir", str(downloaded)]) == 1
    assert "SRC009" in capsys.readouterr().out


# ------------------------------------------------------------------------------------------ bounded waits


def without_workspace(host: str, timeout: int) -> dict:
    env = {name: value for name, value in os.environ.items() if not name.startswith("DATABRICKS_")}
    return {**env, "DATABRICKS_HOST": host, "DATABRICKS_TOKEN": "x", "DATABRICKS_AUTH_TYPE": "pat",
            "MIGRATE_NETWORK_TIMEOUT_SECONDS": str(timeout)}


@pytest.fixture
def silent_listener():
    """A port that accepts connections and never answers: a workspace host that hangs."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    listener.close()


def timed(*argv: str, env: dict) -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    completed = migrate_in_process(*argv, env=env)
    return completed, time.monotonic() - started


@pytest.mark.parametrize("kind", ["silent", "closed"])
def test_an_unreachable_workspace_gives_up_within_the_timeout_and_names_the_host(kind, silent_listener, tmp_path,
                                                                                standin_workspace):
    host = silent_listener if kind == "silent" else "http://127.0.0.1:1"
    # The same command against a workspace that answers at once: what reading an endpoint costs here.
    answered, startup = timed("download", "--endpoint", "not-there", "--workdir", str(tmp_path),
                              env=standin_workspace.environ())
    assert answered.returncode == 1 and "not found" in answered.stderr
    completed, seconds = timed("download", "--endpoint", "my-agent", "--workdir", str(tmp_path),
                               env=without_workspace(host, TIMEOUT))
    assert completed.returncode == 1, completed.stderr
    assert f"workspace at {host} did not answer" in completed.stderr
    assert "VPN" in completed.stderr and "~/.databrickscfg" in completed.stderr
    assert seconds - startup < TIMEOUT + SLACK, f"gave up after {seconds:.0f} s ({startup:.0f} s to start)"


def test_an_unreachable_registry_says_so_within_the_timeout(served_model, tmp_path):
    _, argv, served_env = served_model
    answered, startup = timed("download", *argv[:1], "models:/main.agents.nothing_here/7", *argv[2:], "--workdir",
                              str(tmp_path), env=served_env)
    assert answered.returncode == 1 and "is not in the registry" in answered.stderr
    assert "check the model name and version" in answered.stderr
    env = {**os.environ, "MIGRATE_NETWORK_TIMEOUT_SECONDS": str(TIMEOUT)}
    completed, seconds = timed("download", "--model-uri", "models:/main.agents.a/1", "--registry-uri",
                               "http://127.0.0.1:1", "--tracking-uri", "http://127.0.0.1:1", "--workdir",
                               str(tmp_path), env=env)
    assert completed.returncode == 1, completed.stderr
    assert "registry at http://127.0.0.1:1 did not answer" in completed.stderr
    assert "check the model name and version" not in completed.stderr
    assert seconds - startup < TIMEOUT + SLACK, f"gave up after {seconds:.0f} s ({startup:.0f} s to start)"
    assert not list(tmp_path.glob(".original_mlflow_model*"))


def test_a_workdir_that_cannot_be_written_says_so(served_model, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    completed = download(blocker / "work", served_model)
    assert completed.returncode == 1, completed.stderr
    assert "could not write" in completed.stderr and "check the model name" not in completed.stderr


# ------------------------------------------------------------------------------------------ Ctrl-C


def test_ctrl_c_during_a_slow_download_exits_at_once_and_removes_the_staged_files(standin_workspace, tmp_path):
    folder = tmp_path / "published"
    shutil.copytree(MODEL_FOLDER, folder)
    (folder / "artifacts").mkdir()
    (folder / "artifacts" / "weights.bin").write_bytes(os.urandom(2 * 1024 * 1024))  # 32 chunks: 16 s slowed
    name = f"main.agents.slow{uuid.uuid4().hex[:6]}"
    registry = serve_model(standin_workspace, name, "1", folder, chunk_delay_ms=500)
    workdir = tmp_path / "work"
    env = {**standin_workspace.environ(), **registry_env(standin_workspace)}
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "scripts.cli", "download", "--model-uri", f"models:/{name}/1", "--registry-uri",
             registry, "--tracking-uri", registry, "--workdir", str(workdir)],
            env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while not list(workdir.glob(".original_mlflow_model.*/artifacts/weights.bin")):
            assert process.poll() is None and time.monotonic() < deadline, "the download never started"
            time.sleep(0.2)
        time.sleep(1)  # the big file is in flight
        interrupted = time.monotonic()
        process.send_signal(signal.SIGINT)
        try:
            _, stderr = process.communicate(timeout=30)
        finally:
            process.kill()
        seconds = time.monotonic() - interrupted
    finally:
        serve_model(standin_workspace, name, "1", folder, chunk_delay_ms=0)
    assert process.returncode == 130, stderr
    assert seconds < 5, f"exited {seconds:.1f} s after Ctrl-C"
    assert [path.name for path in workdir.iterdir()] == [], "staged files must be removed"
