"""Issue 11's property over the whole fixture corpus, in both modes: the code check never says PASS for an agent
whose fixture declares a pattern the migration leaves unhandled, and says PASS for every other one (so the
declarations below cannot go stale in the harmless direction either).

The verdict is the one `migrate check code` gives (the step's recorded errors carried, its check re-derived),
without the import probe, which starts an interpreter per app; the e2e tests that serve apps run it.
"""

from __future__ import annotations

import os

import pytest

from checks import code as code_check
from scripts.check import check_steps
from scripts.core.errors import MigrateError
from scripts.core.findings import FAIL, PASS, verdict_of
from scripts.core.layout import MigrationLayout
from tests.steps import migrate_code
from tests.test_code_migration import APP, CORPUS, prepare

# Agents whose request path calls a sync client (LLM, SQL, HTTP): async mode leaves those calls to convert.
BLOCKING_IN_ASYNC = {"class_client", "cwd_prompts", "dotted_tools", "factory_agent", "langgraph_stream",
                     "notebook_export", "obo_tools", "obo_tools_expensive", "obo_tools_stateless", "openai_tools",
                     "pickled_agent", "stream_agent", "subpackage", "supervisor_paths", "uc_toolkit_graph",
                     "unrelated_super", "yaml_config"}
# Patterns a migration cannot handle on its own, by fixture: the finding that must keep the verdict from PASS.
UNHANDLED = {
    "notebook_export": {"COD065"},  # dbutils/spark/display at module level: no notebook in an app
    "obo_tools_expensive": {"COD050"},  # state written per request, and the agent too costly to build per request
}
FIXTURES = sorted(path.name for path in CORPUS.iterdir() if (path / "MLmodel").is_file())


def declared_unhandled(agent: str, mode: str) -> set[str]:
    return UNHANDLED.get(agent, set()) | ({"COD010"} if mode == "async" and agent in BLOCKING_IN_ASYNC else set())


@pytest.fixture(autouse=True)
def workspace_env(monkeypatch):
    monkeypatch.setenv("DATABRICKS_HOST", os.environ.get("DATABRICKS_HOST", "http://127.0.0.1:9"))
    monkeypatch.setenv("DATABRICKS_TOKEN", os.environ.get("DATABRICKS_TOKEN", "not-a-real-token"))
    monkeypatch.setattr(code_check, "import_findings", lambda app, external: [])


def test_the_declarations_name_existing_fixtures():
    assert set(UNHANDLED) | BLOCKING_IN_ASYNC <= set(FIXTURES)
    assert len(FIXTURES) >= 25


@pytest.mark.e2e
@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("agent", FIXTURES)
def test_the_code_verdict_is_pass_only_when_nothing_is_left_unhandled(tmp_path, agent, mode):
    workdir = prepare(tmp_path, agent)
    try:
        migrate_code(workdir, None, mode, force=False)
    except MigrateError:
        pass  # a refusal writes no report: the check must then find the step missing, never PASS
    _, findings = check_steps(MigrationLayout.for_app(workdir / APP), ["code"])
    errors = {finding.code for finding in findings if finding.severity == "error"}
    expected = declared_unhandled(agent, mode)
    if expected:
        assert verdict_of(findings) == FAIL and expected <= errors, (expected, findings)
    else:
        assert verdict_of(findings) == PASS, findings
