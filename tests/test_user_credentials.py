"""ModelServingUserCredentials in the code step (rewritten per request, or marked and refused) and in the code
check (any use left is an error), on the obo_tools fixtures and on small sources."""

from __future__ import annotations

from scripts.analyze import analyze
from scripts.core.reports import write_report

import shutil
from pathlib import Path

import pytest

from checks.user_credentials import user_credential_findings
from tests.steps import migrate_code
from tests.steps import scaffold
from scripts.transform.user_credentials import MARKER, rewrite_user_credentials

CORPUS = Path(__file__).parent / "fixtures" / "agents"

SHAPES = '''
from databricks.sdk import WorkspaceClient
from databricks.sdk.credentials_provider import ModelServingUserCredentials
import databricks_ai_bridge as bridge
from databricks_langchain import ChatDatabricks
CLIENT = WorkspaceClient(credentials_strategy=ModelServingUserCredentials())
class Agent:
    def __init__(self):
        self.w = WorkspaceClient(credentials_strategy=bridge.ModelServingUserCredentials())
    def predict(self, request):
        llm = ChatDatabricks(endpoint="e", workspace_client=WorkspaceClient(
            credentials_strategy=ModelServingUserCredentials()))
        strategy = ModelServingUserCredentials()
        self.client = WorkspaceClient(credentials_strategy=ModelServingUserCredentials())
        pinned = WorkspaceClient(host="h", credentials_strategy=ModelServingUserCredentials())
        index = VectorSearchClient(credential_strategy=CredentialStrategy.MODEL_SERVING_USER_CREDENTIALS)
'''


@pytest.fixture(autouse=True)
def workspace_env(monkeypatch):
    monkeypatch.setenv("DATABRICKS_HOST", "http://127.0.0.1:9")
    monkeypatch.setenv("DATABRICKS_TOKEN", "not-a-real-token")


def test_only_per_request_clients_are_rewritten_and_the_rest_is_marked():
    rewrite = rewrite_user_credentials(SHAPES)
    done = {site.line: site.rewritten for site in rewrite.sites}
    assert done == {6: False, 9: False, 11: True, 13: False, 14: False, 15: False, 16: False}
    assert "workspace_client=user_workspace_client()" in rewrite.code
    assert "from agent_server.user_auth import user_workspace_client" in rewrite.code
    assert rewrite.code.count(MARKER) == 6
    whys = " ".join(site.why for site in rewrite.sites)
    for reason in ("module level", "__init__", "self.client", "other arguments", "VectorSearchClient"):
        assert reason in whys


@pytest.mark.parametrize("agent", ["obo_tools", "obo_tools_stateless"])
def test_the_fixture_agents_get_the_forwarded_user_client(tmp_path, agent):
    workdir = tmp_path / "work"
    shutil.copytree(CORPUS / agent, workdir / "original_mlflow_model")
    (workdir / "migration" / "source").mkdir(parents=True)
    write_report(*analyze(workdir))
    scaffold(workdir, "obo-app", force=False)
    report = migrate_code(workdir, None, "sync", force=False)
    entry = (workdir / "obo-app" / "agent_server" / "agent.py").read_text()
    assert "user_client = user_workspace_client()" in entry
    code = entry.split('"""', 2)[2]  # the module's docstring may still tell the story
    assert "ModelServingUserCredentials" not in code and "credentials_provider" not in code
    assert [finding.code for finding in report.findings if finding.code.startswith("COD03")] == ["COD031"]
    assert user_credential_findings(workdir / "obo-app") == []


def test_the_code_check_errors_on_any_use_left(tmp_path):
    package = tmp_path / "app" / "agent_server"
    package.mkdir(parents=True)
    (package / "agent.py").write_text("# ModelServingUserCredentials in a comment does not count\n"
                                      + rewrite_user_credentials(SHAPES).code)
    findings = user_credential_findings(tmp_path / "app")
    assert {finding.code for finding in findings} == {"COD032"}
    lines = sorted(int(finding.path.rsplit(":", 1)[1]) for finding in findings)
    assert len(lines) == 7 and lines[0] == 4  # the import, then each use; never the comment on line 1
