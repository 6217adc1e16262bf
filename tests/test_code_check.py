"""The code check turns red on bad apps, each problem with its own finding code, path and fix."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from checks import code as code_check
from checks.code import check_code
from tests.steps import migrate_code
from scripts.core.layout import MigrationLayout
from scripts.analyze import analyze
from scripts.core.reports import write_report
from tests.steps import scaffold

CORPUS = Path(__file__).parent / "fixtures" / "agents"


@pytest.fixture(autouse=True)
def workspace_env(monkeypatch):
    monkeypatch.setenv("DATABRICKS_HOST", "http://127.0.0.1:9")
    monkeypatch.setenv("DATABRICKS_TOKEN", "not-a-real-token")


def migrated_app(tmp_path: Path, agent: str = "stream_agent") -> Path:
    workdir = tmp_path / "work"
    shutil.copytree(CORPUS / agent, workdir / "original_mlflow_model")
    (workdir / "migration" / "source").mkdir(parents=True)
    write_report(*analyze(workdir))  # the code step migrates the class analyze found
    scaffold(workdir, "bad-app", force=False)
    migrate_code(workdir, None, "sync", force=False)
    return workdir / "bad-app"


def static_check(app: Path) -> list:
    """`check_code` without its import probe (a fresh interpreter importing MLflow, ~10 s of CPU): the probe's own
    findings are the e2e tests below; the corpus apps' clean import is test_code_migration's e2e test."""
    original = code_check.import_findings
    code_check.import_findings = lambda app, external: []
    try:
        return check_code(MigrationLayout.for_app(app))
    finally:
        code_check.import_findings = original


def codes_at(findings) -> set[tuple[str, str]]:
    return {(finding.code, finding.path.split(":")[0]) for finding in findings if finding.severity == "error"}


def test_file_level_problems_each_have_a_finding(tmp_path):
    app = migrated_app(tmp_path)
    package = app / "agent_server"
    entry = package / "agent.py"
    entry.write_text(entry.read_text() + (
        "\n\nimport time\n\n\nasync def warm_up():\n    time.sleep(1)\n\n\nSTARTUP = [warm_up]\n"
        "\n\nclass Leftover(ResponsesAgent):\n    def predict(self, request):\n        return None\n"))
    (package / "leftover.py").write_text(
        "from pathlib import Path\n\n"
        "from mlflow.pyfunc import ResponsesAgent\n\n"
        "CONFIG = Path(__file__).parent / \"artifacts\" / \"missing.yaml\"\n"
        "DATA = \"/Users/dev/projects/agent/data.csv\"\n\n\n"
        "def helper():\n    from code.helpers import format_answer\n    return format_answer\n\n\n"
        "class Unused(ResponsesAgent):  # copied as is, used by nothing: no finding\n"
        "    def predict(self, request):\n        return None\n")
    (app / "agent_server" / "notes.md").write_text("token: dapi" + "0123456789abcdef" * 2 + "\n")

    findings = static_check(app)
    assert codes_at(findings) == {
        ("COD010", "bad-app/agent_server/agent.py"),
        ("COD015", "bad-app/agent_server/leftover.py"),
        ("COD017", "bad-app/agent_server/leftover.py"),
        ("COD018", "bad-app/agent_server/leftover.py"),
        ("COD014", "bad-app/agent_server/agent.py"),
        ("COD019", "bad-app/agent_server/notes.md"),
    }
    assert all(finding.fix for finding in findings)
    secret = next(finding for finding in findings if finding.code == "COD019")
    assert "0123456789abcdef" not in secret.message  # the secret itself is never repeated


@pytest.mark.e2e  # the import probe: a fresh interpreter
def test_an_entry_module_that_does_not_import_fails_the_check(tmp_path):
    app = migrated_app(tmp_path)
    entry = app / "agent_server" / "agent.py"
    entry.write_text(entry.read_text().replace("from openai import OpenAI", "from openai import NoSuchClient"))
    findings = check_code(MigrationLayout.for_app(app))
    # COD023 too: `OpenAI` is still used, and now bound nowhere.
    assert sorted(finding.code for finding in findings) == ["COD012", "COD023"]
    assert "NoSuchClient" in findings[0].message and "`OpenAI`" in findings[1].message


@pytest.mark.e2e  # the import probe: a fresh interpreter
def test_an_agent_without_workspace_credentials_at_import_is_unverified_and_told_how_to_get_them(tmp_path,
                                                                                                monkeypatch):
    app = migrated_app(tmp_path)
    entry = app / "agent_server" / "agent.py"
    entry.write_text("from databricks.sdk import WorkspaceClient\nWORKSPACE = WorkspaceClient()\n" + entry.read_text())
    for name in ("DATABRICKS_HOST", "DATABRICKS_TOKEN"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", str(tmp_path / "no-such-databrickscfg"))
    monkeypatch.setenv("HOME", str(tmp_path))  # nor a ~/.databrickscfg or cached CLI login
    findings = check_code(MigrationLayout.for_app(app))
    # COD067: the added WorkspaceClient() is also a call at import that reaches the workspace.
    assert sorted((finding.code, finding.severity) for finding in findings) == [("COD040", "unverified"),
                                                                                ("COD067", "warning")]
    [unverified] = [finding for finding in findings if finding.code == "COD040"]
    assert "no workspace answered here" in unverified.message
    assert "--profile PROFILE" in unverified.fix and "migrate setup --profile" in unverified.fix


@pytest.mark.e2e  # the import probe: a fresh interpreter
def test_a_second_stream_handler_fails_the_check(tmp_path):
    app = migrated_app(tmp_path)
    entry = app / "agent_server" / "agent.py"
    entry.write_text(entry.read_text() + "\n\n@stream()\nasync def another(request):\n    yield None\n")
    findings = check_code(MigrationLayout.for_app(app))
    # COD042 too: in a sync-mode app, the added handler does not run the agent in worker threads.
    assert sorted(finding.code for finding in findings) == ["COD013", "COD042"]


def test_the_scaffold_placeholder_is_not_a_migrated_agent(tmp_path):
    workdir = tmp_path / "work"
    (workdir / "migration" / "source").mkdir(parents=True)
    scaffold(workdir, "new-app", force=False)
    findings = check_code(MigrationLayout.for_app(workdir / "new-app"))
    assert [finding.code for finding in findings] == ["COD011"]


@pytest.mark.e2e  # the import probe: a fresh interpreter
def test_a_missing_dependency_is_named(tmp_path):
    app = migrated_app(tmp_path, "subpackage")
    (app / "agent_server" / "extra.py").write_text("import surely_not_installed_pkg\n")
    findings = check_code(MigrationLayout.for_app(app))
    assert [(finding.code, "surely_not_installed_pkg" in finding.message) for finding in findings] == [
        ("COD016", True)]
