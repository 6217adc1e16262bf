"""`migrate setup`: dependency decisions, requirements.txt = uv, a real `uv lock`, .env, the experiment, its check."""

from __future__ import annotations

import os
import shutil
import tomllib
from pathlib import Path

import pytest

from checks.setup import check_setup
from scripts.core.errors import MigrateError
from scripts.core.layout import MigrationLayout
from tests.steps import scaffold
from tests.steps import setup
from scripts.setup_dependencies import decide_dependencies, merged_dependencies, scaffold_dependencies
from scripts.setup_env import fill_env

FIXTURES = Path(__file__).parent / "fixtures" / "resources"
ORIGINAL_REQUIREMENTS = "mlflow==3.17.2\ncloudpickle==3.1.3\nhttpx==0.28.1\n"


@pytest.fixture(autouse=True)
def no_workspace(monkeypatch):
    for name in ("DATABRICKS_HOST", "DATABRICKS_TOKEN", "DATABRICKS_CONFIG_PROFILE"):
        monkeypatch.delenv(name, raising=False)


def make_app(root: Path, requirements: str = ORIGINAL_REQUIREMENTS, name: str = "my-agent") -> Path:
    """A working directory as download leaves it, scaffolded into an app."""
    source = root / "migration" / "source"
    source.mkdir(parents=True)
    (root / "migration" / "reports").mkdir()
    (source / "requirements.txt").write_text(requirements)
    shutil.copy(FIXTURES / "all_types.MLmodel", source / "MLmodel")
    scaffold(root, name, force=False)
    return root / name


def actions(lines: list[str]) -> dict[str, tuple[str, str | None]]:
    return {d.requirement: (d.action, d.result) for d in decide_dependencies(lines, scaffold_dependencies())}


def test_each_requirement_gets_a_decision():
    decided = actions([
        "mlflow==2.19.0", "cloudpickle==3.1.3", "mlflow-skinny==2.19.0", "openai==1.99.0", "databricks-sdk",
        "databricks-sdk==0.50.0", "fastapi>=0.100", "uvicorn==0.35.0", "langgraph>=0.6; python_version >= '3.10'",
        "-r other.txt", "not a requirement !!", "# a comment", "",
    ])
    assert decided["mlflow==2.19.0"] == ("raised", "mlflow>=3.17")
    assert decided["cloudpickle==3.1.3"][0] == "dropped"
    assert decided["mlflow-skinny==2.19.0"][0] == "dropped"
    assert decided["openai==1.99.0"] == ("kept", "openai==1.99.0")
    assert decided["databricks-sdk"] == ("provided", None)
    assert decided["databricks-sdk==0.50.0"][0] == "dropped"  # listed twice: the first line wins
    assert decided["fastapi>=0.100"] == ("merged", "fastapi>=0.100,>=0.110")
    assert decided["uvicorn==0.35.0"] == ("kept", "uvicorn==0.35.0")
    assert decided["langgraph>=0.6; python_version >= '3.10'"] == ("kept", 'langgraph>=0.6; python_version >= "3.10"')
    assert decided["-r other.txt"][0] == "unsupported"
    assert decided["not a requirement !!"][0] == "unsupported"
    assert "# a comment" not in decided


@pytest.mark.parametrize("line, expected", [
    ("mlflow==3.18.0", ("kept", "mlflow==3.18.0")),
    ("mlflow[databricks]==2.22.0", ("raised", "mlflow[databricks]>=3.17")),
    ("mlflow<3", ("raised", "mlflow>=3.17")),
    ("mlflow>=2.0", ("merged", "mlflow>=2.0,>=3.17")),
    ("databricks-sdk==0.50.0", ("raised", "databricks-sdk>=0.160")),
    ("mlflow>=3.17", ("provided", None)),
])
def test_mlflow_and_scaffold_packages_are_raised_only_when_the_agent_pin_is_too_old(line, expected):
    assert actions([line])[line] == expected


def test_merging_keeps_the_users_own_entries_and_is_stable():
    current = ["mlflow>=3.17", "databricks-sdk>=0.160", "my-extra==1.0"]
    decisions = decide_dependencies(["openai==1.99.0", "mlflow==2.0"], scaffold_dependencies())
    merged = merged_dependencies(current, decisions)
    assert merged == ["mlflow>=3.17", "databricks-sdk>=0.160", "my-extra==1.0", "openai==1.99.0"]
    assert merged_dependencies(merged, decisions) == merged


def test_env_never_overwrites_what_the_user_set(tmp_path):
    (tmp_path / ".env.example").write_text("# comment\nDATABRICKS_CONFIG_PROFILE=DEFAULT\nMLFLOW_EXPERIMENT_ID=\n")
    (tmp_path / ".env").write_text("DATABRICKS_CONFIG_PROFILE=work\nMLFLOW_EXPERIMENT_ID=\nMY_OWN=1\n")
    state, acted = fill_env(tmp_path, {"MLFLOW_EXPERIMENT_ID": "42", "DATABRICKS_CONFIG_PROFILE": "other"})
    text = (tmp_path / ".env").read_text()
    assert "DATABRICKS_CONFIG_PROFILE=work" in text and "MLFLOW_EXPERIMENT_ID=42" in text and "MY_OWN=1" in text
    assert state == "updated" and acted == {"DATABRICKS_CONFIG_PROFILE": "kept", "MLFLOW_EXPERIMENT_ID": "filled"}
    fill_env(tmp_path, {"MLFLOW_EXPERIMENT_ID": "43"})
    assert "MLFLOW_EXPERIMENT_ID=42" in (tmp_path / ".env").read_text()  # now the user's (or an earlier run's)


def test_an_env_value_equal_to_the_one_setup_wants_is_no_finding(tmp_path):
    """Issue 14: SET005 warned "keeps your value, not 'work'" when .env already held `work`."""
    (tmp_path / ".env.example").write_text("DATABRICKS_CONFIG_PROFILE=DEFAULT\n")
    (tmp_path / ".env").write_text("DATABRICKS_CONFIG_PROFILE=work\n")
    state, acted = fill_env(tmp_path, {"DATABRICKS_CONFIG_PROFILE": "work"})
    assert (state, acted) == ("unchanged", {"DATABRICKS_CONFIG_PROFILE": "unchanged"})


def test_setup_offline_locks_writes_env_and_passes_its_check(tmp_path):
    app = make_app(tmp_path)
    report = setup(tmp_path, None, None, False)

    assert (app / "requirements.txt").read_text() == "uv\n"
    pyproject = (app / "pyproject.toml").read_text()
    assert '"httpx==0.28.1"' in pyproject and '"mlflow==3.17.2"' in pyproject and "cloudpickle" not in pyproject
    assert (app / "uv.lock").is_file() and report.payload["uv"]["locked_mlflow"] == "3.17.2"
    assert "MLFLOW_EXPERIMENT_ID=" in (app / ".env").read_text()
    assert [finding.code for finding in report.findings] == ["SET004"]
    assert "migrate setup --profile" in report.findings[0].fix
    assert report.payload["experiment"]["status"] == "not_configured"
    assert check_setup(MigrationLayout.for_app(app)) == []

    before = {name: (app / name).read_bytes() for name in ("pyproject.toml", "uv.lock", ".env", "databricks.yml")}
    again = setup(tmp_path, app, None, False)
    assert {name: (app / name).read_bytes() for name in before} == before
    assert set(again.payload["files"].values()) == {"unchanged"}


def test_an_unresolvable_requirement_surfaces_uvs_message_and_the_package(tmp_path):
    app = make_app(tmp_path, requirements="agent-migrate-no-such-package-xyz==9.9.9\n")
    with pytest.raises(MigrateError) as error:
        setup(tmp_path, app, None, False)
    assert error.value.code == "SET010"
    assert "agent-migrate-no-such-package-xyz" in error.value.message
    said = " ".join(error.value.message.split())  # uv wraps its message to the width it sees
    assert "not found in the package registry" in said or "no version" in said, error.value.message


def test_setup_keeps_the_users_edit_after_a_requirement_that_cannot_resolve(tmp_path):
    """Issue 14: SET010 said to change the line in pyproject.toml, and setup put the original line back."""
    missing = "agent-migrate-no-such-package-xyz"
    app = make_app(tmp_path, requirements=f"httpx==0.28.1\n{missing}==9.9.9\n")
    with pytest.raises(MigrateError) as error:
        setup(tmp_path, app, None, False)
    assert error.value.code == "SET010" and "setup keeps your edit" in error.value.fix
    pyproject = app / "pyproject.toml"
    text = pyproject.read_text()
    assert f'"{missing}==9.9.9",\n' in text
    # The user follows the fix: removes the package that does not exist and pins httpx differently.
    pyproject.write_text(text.replace(f'"{missing}==9.9.9",\n', "").replace('"httpx==0.28.1",', '"httpx==0.27.2",'))
    report = setup(tmp_path, app, None, False)
    decided = {decision["package"]: decision for decision in report.payload["decisions"]}
    assert decided[missing]["action"] == "yours" and decided[missing]["result"] is None
    assert decided["httpx"]["action"] == "yours" and decided["httpx"]["result"] == "httpx==0.27.2"
    dependencies = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    assert not [line for line in dependencies if missing in line] and "httpx==0.27.2" in dependencies
    removed = [finding for finding in check_setup(MigrationLayout.for_app(app)) if finding.code == "SET107"]
    assert [(finding.severity, missing in finding.message) for finding in removed] == [("warning", True)]
    again = setup(tmp_path, app, None, False)  # stable: the user's choice stays, nothing rewritten
    assert again.payload["files"]["pyproject.toml"] == "unchanged"


def test_a_requirements_txt_listing_packages_is_not_replaced_without_force(tmp_path):
    app = make_app(tmp_path)
    (app / "requirements.txt").write_text("pandas\n")
    with pytest.raises(MigrateError, match="would install from it with pip") as error:
        setup(tmp_path, app, None, False)
    assert error.value.code == "SET011" and (app / "requirements.txt").read_text() == "pandas\n"


def test_the_check_finds_what_breaks_the_install(tmp_path):
    app = make_app(tmp_path)
    setup(tmp_path, app, None, False)
    layout = MigrationLayout.for_app(app)
    (app / "requirements.txt").write_text("uv\npandas\n")
    text = (app / "pyproject.toml").read_text()
    (app / "pyproject.toml").write_text(text.replace('"httpx==0.28.1",', '"mlflow<3",'))
    (app / ".gitignore").write_text(".venv/\n")
    codes = sorted({finding.code for finding in check_setup(layout)})
    # requirements.txt, lock out of date, mlflow too old (and duplicated), httpx gone, .env committed
    assert codes == ["SET101", "SET103", "SET104", "SET106", "SET107"]


def test_the_check_reads_setups_decisions_from_its_report_and_pyproject(tmp_path):
    """The check never re-runs setup's decision: a requirement the report has no decision for is an error, and a
    pyproject.toml whose record of what setup wrote is not the report's is a warning."""
    app = make_app(tmp_path)
    setup(tmp_path, app, None, False)
    layout = MigrationLayout.for_app(app)
    assert check_setup(layout) == []
    source = layout.source / "requirements.txt"
    source.write_text(source.read_text() + "agent-migrate-added-later==1.0\n")
    text = (app / "pyproject.toml").read_text()
    (app / "pyproject.toml").write_text(text[:text.index("[tool.agent-migrate")])
    found = {(finding.code, finding.severity): finding.message for finding in check_setup(layout)}
    assert "agent-migrate-added-later" in found[("SET107", "error")]
    assert "records no decision" in found[("SET107", "error")]
    assert "httpx" in found[("SET020", "warning")] and "mlflow" in found[("SET020", "warning")]


@pytest.mark.e2e
def test_setup_creates_the_experiment_once_in_a_workspace(tmp_path, monkeypatch, standin_workspace):
    app = make_app(tmp_path)
    for name, value in standin_workspace.env().items():
        if value:
            monkeypatch.setenv(name, value)
        else:
            monkeypatch.delenv(name, raising=False)
    first = setup(tmp_path, app, None, False)
    second = setup(tmp_path, app, None, False)
    experiment = first.payload["experiment"]
    assert experiment["status"] == "created" and experiment["name"] == "/Users/demo.user@example.com/my-agent"
    assert second.payload["experiment"] == {**experiment, "status": "reused"}
    assert f"MLFLOW_EXPERIMENT_ID={experiment['experiment_id']}" in (app / ".env").read_text()
    assert f'default: "{experiment["experiment_id"]}"' in (app / "databricks.yml").read_text() or \
        f"default: '{experiment['experiment_id']}'" in (app / "databricks.yml").read_text() or \
        f"default: {experiment['experiment_id']}" in (app / "databricks.yml").read_text()
    assert not [finding for finding in first.findings if finding.code == "SET004"]
    assert os.environ.get("DATABRICKS_HOST")  # the workspace came from the environment
