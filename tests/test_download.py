"""`migrate download`: endpoint resolution against the stand-in, the download into place, and its check."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import standin
from checks.download import check_download
from scripts import cli, download, download_resolve
from scripts.core.layout import MigrationLayout
from tests.conftest import run_migrate


@pytest.fixture
def workspace_env(standin_workspace, monkeypatch):
    """Point databricks-sdk in this process at the stand-in, as a profile would."""
    for name in standin.WORKSPACE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in standin_workspace.env().items():
        monkeypatch.setenv(name, value)
    return standin_workspace


def migrate_download(tmp_path: Path, *argv: str) -> int:
    return cli.main(["download", *argv, "--workdir", str(tmp_path)])


# ------------------------------------------------------------------------------------------ resolving the endpoint


def test_the_entity_with_all_traffic_is_chosen(workspace_env):
    workspace_env.add_endpoint(standin.endpoint_json("one-entity", "main.agents.a", "3"))
    model = download_resolve.choose_entity(download_resolve.fetch_endpoint("one-entity", None), None, None)
    assert (model.uri, model.traffic_percentage) == ("models:/main.agents.a/3", 100)


def test_a_traffic_split_lists_the_entities_and_asks_which(workspace_env, tmp_path, capsys):
    workspace_env.add_endpoint(standin.endpoint_json(
        "split", "main.agents.a", "3", split=[("main.agents.a", "3", 80), ("main.agents.a", "4", 20)]))
    assert migrate_download(tmp_path, "--endpoint", "split") == 1
    error = capsys.readouterr().err
    assert "traffic is split" in error and "version 3 (80% of traffic)" in error and "version 4 (20%" in error
    assert "--entity" in error and "--version" in error
    assert not (tmp_path / "original_mlflow_model").exists()


def test_a_traffic_split_is_settled_by_version(workspace_env):
    workspace_env.add_endpoint(standin.endpoint_json(
        "split-2", "main.agents.a", "3", split=[("main.agents.a", "3", 80), ("main.agents.a", "4", 20)]))
    model = download_resolve.choose_entity(download_resolve.fetch_endpoint("split-2", None), None, "4")
    assert (model.version, model.traffic_percentage) == ("4", 20)


@pytest.mark.parametrize("endpoint_json, kind", [
    (standin.foundation_endpoint_json("databricks-meta-llama"), "foundation model"),
    (standin.external_endpoint_json("my-gpt"), "external model"),
])
def test_an_endpoint_without_a_registered_agent_has_nothing_to_migrate(workspace_env, tmp_path, capsys,
                                                                       endpoint_json, kind):
    workspace_env.add_endpoint(endpoint_json)
    assert migrate_download(tmp_path, "--endpoint", endpoint_json["name"]) == 1
    error = capsys.readouterr().err
    assert kind in error and "no agent code to migrate" in error


def test_an_unknown_endpoint_is_a_404_with_the_list_command(workspace_env, tmp_path, capsys):
    assert migrate_download(tmp_path, "--endpoint", "does-not-exist") == 1
    error = capsys.readouterr().err
    assert "not found" in error and "databricks serving-endpoints list" in error


def test_a_forbidden_endpoint_says_which_permission(workspace_env, tmp_path, capsys):
    workspace_env.add_endpoint(standin.endpoint_json("secret-agent", "main.agents.s", "1"), forbidden=True)
    assert migrate_download(tmp_path, "--endpoint", "secret-agent", "--profile", "prod") == 1
    error = capsys.readouterr().err
    assert "CAN_VIEW" in error and "databricks auth login --profile prod" in error


def test_a_rejected_token_points_to_auth_login(workspace_env, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DATABRICKS_TOKEN", "not-the-token")
    assert migrate_download(tmp_path, "--endpoint", "anything") == 1
    error = capsys.readouterr().err
    assert "did not accept your credentials" in error and "databricks auth login" in error


def test_a_malformed_model_uri_is_refused_with_an_example(tmp_path, capsys):
    assert migrate_download(tmp_path, "--model-uri", "runs:/abc/agent") == 1
    assert "models:/<catalog.schema.model>/<version>" in capsys.readouterr().err


@pytest.mark.parametrize("mlmodel, found", [
    ("flavors: [unclosed\n", ("DLD010", "original_mlflow_model/MLmodel:1", "not valid YAML")),
    ("just a string\n", ("DLD010", "original_mlflow_model/MLmodel:1", "not an MLmodel mapping")),
    ("flavors:\n  - python_function\n", ("DLD010", "original_mlflow_model/MLmodel:1", "`flavors` is a list")),
    ("", ("DLD010", "original_mlflow_model/MLmodel:1", "not an MLmodel mapping")),
    ("flavors:\n  sklearn: {}\n", ("DLD001", "original_mlflow_model/MLmodel", "no python_function flavor")),
])
def test_a_downloaded_mlmodel_that_cannot_be_read_is_an_error_with_its_line(mlmodel, found, tmp_path):
    """Before, a broken MLmodel was a traceback (exit 3) or only DLD001 ("no python_function flavor")."""
    (tmp_path / "MLmodel").write_text(mlmodel)
    findings = download.verify(tmp_path)
    code, where, words = found
    errors = [finding for finding in findings if finding.severity == "error"]
    assert [(finding.code, finding.path) for finding in errors] == [(code, where)], findings
    assert words in errors[0].message


# ------------------------------------------------------------------------------------------ downloading (real MLflow)


@pytest.mark.e2e
def test_download_by_endpoint_writes_the_original_and_the_source_facts(standin_workspace, registered_example,
                                                                       endpoint_for, tmp_path):
    registered = registered_example("openai_tools")
    completed = run_migrate("download", "--endpoint", endpoint_for("openai_tools"),
                            "--registry-uri", registered["registry_uri"], "--tracking-uri",
                            registered["tracking_uri"], "--workdir", str(tmp_path), env=standin_workspace.environ())
    assert completed.returncode == 0, completed.stderr
    original = tmp_path / "original_mlflow_model"
    assert {"MLmodel", "agent.py", "code", "artifacts", "input_example.json"} <= {p.name for p in original.iterdir()}
    layout = MigrationLayout.for_workdir(tmp_path)
    report = json.loads(layout.report_path("download").read_text())
    assert report["payload"]["model"] == {
        "uri": registered["model_uri"], "name": registered["name"], "version": registered["version"],
        "endpoint": "openai-tools-endpoint", "served_entity": f"openai_tools-{registered['version']}",
        "traffic_percentage": 100}
    assert (layout.source / "MLmodel").read_bytes() == (original / "MLmodel").read_bytes()
    manifest = json.loads((layout.source / "manifest.json").read_text())
    assert "code/tools.py" in manifest["files"] and "artifacts/system_prompt.txt" in manifest["files"]
    assert check_download(layout) == []
    assert not list(tmp_path.glob(".original_mlflow_model*")), "no staging folder may be left behind"


@pytest.mark.e2e
def test_a_second_download_of_the_same_model_changes_nothing(downloaded_example, standin_workspace,
                                                             registered_example):
    workdir = downloaded_example("openai_tools")
    registered = registered_example("openai_tools")
    before = {path: path.stat().st_mtime_ns for path in (workdir / "original_mlflow_model").rglob("*")}
    completed = run_migrate("download", "--model-uri", registered["model_uri"], "--registry-uri",
                            registered["registry_uri"], "--tracking-uri", registered["tracking_uri"],
                            "--workdir", str(workdir), env=standin_workspace.environ())
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith("unchanged:")
    assert before == {path: path.stat().st_mtime_ns for path in (workdir / "original_mlflow_model").rglob("*")}


@pytest.mark.e2e
def test_a_different_or_edited_model_is_refused_without_force_and_replaced_with_it(
        downloaded_example, standin_workspace, registered_example):
    workdir = downloaded_example("openai_tools")
    registered = registered_example("openai_tools")
    agent = workdir / "original_mlflow_model" / "agent.py"
    agent.write_text(agent.read_text() + "\n# edited\n")
    argv = ["download", "--model-uri", registered["model_uri"], "--registry-uri", registered["registry_uri"],
            "--tracking-uri", registered["tracking_uri"], "--workdir", str(workdir)]

    refused = run_migrate(*argv, env=standin_workspace.environ())
    assert refused.returncode == 1 and "its files were changed" in refused.stderr and "--force" in refused.stderr
    assert agent.read_text().endswith("# edited\n"), "a refused download must not touch the folder"

    other = run_migrate(*argv[:2], "models:/main.agents.other/1", *argv[3:], env=standin_workspace.environ())
    assert other.returncode == 1 and "holds models:/main.agents.openai_tools" in other.stderr

    replaced = run_migrate(*argv, "--force", env=standin_workspace.environ())
    assert replaced.returncode == 0, replaced.stderr
    assert replaced.stdout.startswith("replaced:") and not agent.read_text().endswith("# edited\n")


@pytest.mark.e2e
def test_an_interrupted_download_leaves_the_previous_original_whole(downloaded_example, registered_example,
                                                                    monkeypatch):
    workdir = downloaded_example("openai_tools")
    registered = registered_example("openai_tools")
    layout = MigrationLayout.for_workdir(workdir)
    before = (layout.original / "MLmodel").read_bytes()

    def interrupted_fetch(model, registry_uri, tracking_uri, target):
        (target / "MLmodel").write_text("half")
        raise KeyboardInterrupt

    monkeypatch.setattr(download, "fetch_model", interrupted_fetch)
    code = cli.main(["download", "--model-uri", registered["model_uri"], "--registry-uri",
                     registered["registry_uri"], "--workdir", str(workdir), "--force"])
    assert code == 130
    assert (layout.original / "MLmodel").read_bytes() == before
    assert [path.name for path in workdir.iterdir() if path.name.startswith(".original")] == []


@pytest.mark.e2e
def test_the_check_sees_an_edited_source_copy_and_an_added_file(downloaded_example, tmp_path):
    workdir = tmp_path / "copy"
    shutil.copytree(downloaded_example("openai_tools"), workdir)
    layout = MigrationLayout.for_workdir(workdir)
    (layout.source / "requirements.txt").write_text("mlflow\n")
    (layout.original / "notes.txt").write_text("mine")
    codes = {finding.code for finding in check_download(layout)}
    assert codes == {"SRC005", "SRC007"}
