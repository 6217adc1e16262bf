"""Shared fixtures: a running workspace stand-in, example agents registered in a real MLflow registry,
and downloads of them, built once per test session because logging a model takes tens of seconds.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from scripts.demo import load_example_module

REPO = Path(__file__).resolve().parent.parent


def run_migrate(*argv: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """One `migrate` command in its own process, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "scripts.cli", *argv], capture_output=True, text=True,
                          env=env, cwd=cwd or REPO)


@pytest.fixture(scope="session")
def standin_workspace():
    import standin

    with standin.running() as workspace:
        yield workspace


@pytest.fixture(scope="session")
def registered_example(standin_workspace, tmp_path_factory):
    """`registered_example(name)`: the example logged and registered once per session; where it is."""
    catalog = load_example_module("catalog")
    registry_dir = tmp_path_factory.mktemp("registry")
    registered: dict[str, dict] = {}

    def register(name: str) -> dict:
        if name not in registered:
            registered[name] = catalog.register_example(name, registry_dir, standin_workspace.environ())
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
    """`downloaded_example(name)`: a fresh working directory with the example downloaded into it."""

    def download(name: str, workdir: Path | None = None) -> Path:
        registered = registered_example(name)
        workdir = workdir or tmp_path_factory.mktemp(f"work-{name}")
        completed = run_migrate("download", "--model-uri", registered["model_uri"],
                                "--registry-uri", registered["registry_uri"],
                                "--tracking-uri", registered["tracking_uri"], "--workdir", str(workdir),
                                env=standin_workspace.environ())
        assert completed.returncode == 0, completed.stdout + completed.stderr
        return workdir

    return download
