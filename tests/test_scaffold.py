"""`migrate scaffold`: the app folder, its name rules, refusing to overwrite, and its check."""

from __future__ import annotations

import pytest

from checks.scaffold import check_scaffold
from scripts.core.errors import MigrateError
from scripts.core.layout import MigrationLayout
from scripts.core.app_names import app_name_problem
from tests.steps import scaffold


@pytest.fixture
def workdir(tmp_path):
    """A working directory as the download step leaves it: migration/ with a report and source facts."""
    (tmp_path / "migration" / "reports").mkdir(parents=True)
    (tmp_path / "migration" / "reports" / "download.json").write_text("{}")
    (tmp_path / "migration" / "source").mkdir()
    (tmp_path / "migration" / "source" / "MLmodel").write_text("flavors: {}\n")
    return tmp_path


@pytest.mark.parametrize("name", ["my-agent", "a1", "agent-2-go", "x" * 30])
def test_valid_app_names(name):
    assert app_name_problem(name) is None


@pytest.mark.parametrize("name", ["My-Agent", "my_agent", "-agent", "agent-", "a", "x" * 31, "agent.v2", ""])
def test_invalid_app_names(name):
    assert app_name_problem(name) is not None


def test_a_bad_name_is_refused_with_the_rule_and_nothing_is_written(workdir):
    with pytest.raises(MigrateError) as error:
        scaffold(workdir, "My_Agent", force=False)
    assert "lowercase" in error.value.fix and "my-agent" in error.value.fix
    assert sorted(path.name for path in workdir.iterdir()) == ["migration"]


def test_scaffold_creates_the_app_and_carries_the_migration_facts(workdir):
    report = scaffold(workdir, "my-agent", force=False)
    app = workdir / "my-agent"
    assert (app / "agent_server" / "start_server.py").is_file()
    assert (app / ".env.example").is_file() and ".env" in (app / ".gitignore").read_text().split()
    bundle = (app / "databricks.yml").read_text()
    assert "name: my-agent" in bundle and "my_agent:" in bundle and "__APP" not in bundle
    assert (app / "migration" / "source" / "MLmodel").is_file()
    assert (app / "migration" / "reports" / "download.json").is_file()
    assert (app / "migration" / "reports" / "scaffold.json").is_file()
    assert not (app / "AGENTS.md").exists() and not (app / "skills").exists()
    assert {entry["action"] for entry in report.payload["files"]} == {"create"}
    assert check_scaffold(MigrationLayout.for_app(app)) == []
    assert not [path for path in workdir.iterdir() if path.name.endswith(".partial")]


def test_an_existing_app_is_refused_without_force(workdir):
    scaffold(workdir, "my-agent", force=False)
    with pytest.raises(MigrateError, match="already exists") as error:
        scaffold(workdir, "my-agent", force=False)
    assert "--force" in error.value.fix


def test_force_keeps_what_the_user_changed_and_restores_what_is_missing(workdir):
    scaffold(workdir, "my-agent", force=False)
    app = workdir / "my-agent"
    (app / "README.md").write_text("# my own words\n")
    (app / "notes.txt").write_text("mine\n")
    (app / ".env.example").unlink()

    report = scaffold(workdir, "my-agent", force=True)
    actions = {entry["path"]: entry["action"] for entry in report.payload["files"]}
    assert actions["README.md"] == "kept" and actions[".env.example"] == "create"
    assert actions["databricks.yml"] == "unchanged"
    assert (app / "README.md").read_text() == "# my own words\n"
    assert (app / "notes.txt").read_text() == "mine\n"
    assert [finding.code for finding in report.findings] == ["SCF001"]

    # A second forced run still recognises the README as the user's.
    again = scaffold(workdir, "my-agent", force=True)
    assert {entry["path"]: entry["action"] for entry in again.payload["files"]}["README.md"] == "kept"
    assert (app / "README.md").read_text() == "# my own words\n"


def test_force_updates_a_file_the_scaffold_wrote_and_nobody_changed(workdir, monkeypatch):
    import scripts.scaffold as scaffold_module

    scaffold(workdir, "my-agent", force=False)
    original_render = scaffold_module.render_scaffold

    def newer_scaffold(app_name):
        rendered = original_render(app_name)
        rendered["README.md"] += b"\nA line a newer scaffold adds.\n"
        return rendered

    monkeypatch.setattr(scaffold_module, "render_scaffold", newer_scaffold)
    report = scaffold(workdir, "my-agent", force=True)
    assert {entry["path"]: entry["action"] for entry in report.payload["files"]}["README.md"] == "update"
    assert "A line a newer scaffold adds." in (workdir / "my-agent" / "README.md").read_text()


def test_scaffold_without_a_download_says_to_download_first(tmp_path):
    with pytest.raises(MigrateError, match="download"):
        scaffold(tmp_path, "my-agent", force=False)
    assert not (tmp_path / "my-agent").exists()


def test_the_check_finds_tooling_in_the_app_and_a_renamed_folder(workdir):
    scaffold(workdir, "my-agent", force=False)
    app = workdir / "my-agent"
    (app / "skills").mkdir()
    (app / ".gitignore").write_text("__pycache__/\n")
    (app / "pyproject.toml").unlink()
    codes = sorted(finding.code for finding in check_scaffold(MigrationLayout.for_app(app)))
    assert codes == ["SCF003", "SCF004", "SCF005"]
    renamed = workdir / "other-name"
    app.rename(renamed)
    assert "SCF006" in {finding.code for finding in check_scaffold(MigrationLayout.for_app(renamed))}


@pytest.mark.e2e
def test_the_app_loads_with_the_collector_off_then_serves_with_it_on(workdir):
    """start_server.py keeps the cyclic collector off while MLflow and the agent load (a third of the start's
    CPU), then collects once, freezes what start-up built and turns the collector back on: a server left
    with it off would grow without bound, one never frozen walks start-up's objects in every collection."""
    import json
    import os
    import subprocess
    import sys

    app = scaffold(workdir, "gc-app", force=False).layout.root
    state = ("import gc, json\n"
             "import agent_server.start_server\n"
             "before = gc.get_stats()[0]['collections']\n"
             "agent_server.start_server.loaded_app()  # what start-server does before serving\n"
             "print(json.dumps({'enabled': gc.isenabled(), 'frozen': gc.get_freeze_count(),\n"
             "                  'young_collections': gc.get_stats()[0]['collections'] - before}))")
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    completed = subprocess.run([sys.executable, "-c", state], cwd=app, env=env, capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr
    after_start = json.loads(completed.stdout.splitlines()[-1])
    assert after_start["enabled"] is True
    assert after_start["frozen"] > 100_000  # MLflow, FastAPI and the agent's module objects
    # None ran while they loaded: with the collector on throughout, about 500 run.
    assert after_start["young_collections"] == 0
