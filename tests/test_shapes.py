"""Agents of shapes the class transform does not expect: factories, copied packages with unused legacy code,
unrelated classes, LangChain-flavor models, pickled models, ChatModel. Each must migrate, or be named by a
finding that says why; none may be blocked by a false alarm (issue 11, patterns 7, 8, 10)."""

from __future__ import annotations

import os

import pytest

from scripts.analyze import analyze
from tests.test_code_migration import migrated, static_check

CORPUS_ENV = {"DATABRICKS_HOST": "http://127.0.0.1:9", "DATABRICKS_TOKEN": "not-a-real-token"}


@pytest.fixture(autouse=True)
def workspace_env(monkeypatch):
    for key, value in CORPUS_ENV.items():
        monkeypatch.setenv(key, os.environ.get(key, value))


def analyzed(tmp_path, agent):
    from tests.test_code_migration import CORPUS
    import shutil

    workdir = tmp_path / "work"
    shutil.copytree(CORPUS / agent, workdir / "original_mlflow_model")
    return analyze(workdir)[1]


def codes(findings, severity=None) -> set[str]:
    return {finding.code for finding in findings if severity is None or finding.severity == severity}


# ---------------------------------------------------------------------------------------------------- factories


def test_a_factory_in_the_package_is_followed_to_its_class_and_kept_as_the_way_to_build_it(tmp_path):
    report = analyzed(tmp_path, "factory_agent")
    agent = report.payload["agent_class"]
    assert agent["name"] == "ShopAgent" and agent["base"] == "ResponsesAgent"
    assert agent["factory"] == {"expression": "build_agent(model='databricks-claude-sonnet-4', tone='brief')",
                                "line": 14, "returns": "ShopAgent"}
    assert not codes(report.findings, "error") and "ANA050" in codes(report.findings)

    _, app, code_report = migrated(tmp_path / "code", "factory_agent", "sync")
    source = (app / "agent_server" / "agent.py").read_text()
    # The factory's arguments are kept: ShopAgent() alone would not even start (it takes model and tone).
    assert "AGENT = build_agent(model=\"databricks-claude-sonnet-4\", tone=\"brief\")" in source
    assert "ShopAgent()" not in source and code_report.payload["transform"] == "wrapper"
    assert code_report.payload["handlers"] and "AGENT.predict_stream" in source


def test_an_unused_chat_model_and_async_function_of_a_copied_package_are_no_errors(tmp_path):
    _, app, _ = migrated(tmp_path, "factory_agent", "async")
    findings = static_check(app)
    errors = [finding for finding in findings if finding.severity == "error"]
    assert not [finding for finding in errors if "legacy.py" in finding.path], errors
    assert not [finding for finding in errors if finding.code in ("COD005", "COD014")], errors
    # ... while a blocking call the handlers do reach is still found.
    assert any(finding.code == "COD010" and "AGENT.predict_stream" in finding.message for finding in findings)


def test_a_library_factory_is_served_as_it_is_instead_of_no_agent_class(tmp_path):
    report = analyzed(tmp_path, "factory_library")
    assert "ANA003" not in codes(report.findings)
    assert "ANA050" in codes(report.findings, "warning")
    assert report.payload["agent_class"]["found_by"] == "factory"

    _, app, code_report = migrated(tmp_path / "code", "factory_library", "sync")
    source = (app / "agent_server" / "agent.py").read_text()
    assert "AGENT = config.as_responses_agent()" in source
    assert "run_sync(AGENT.predict, request)" in source and "AGENT.predict_stream" not in source
    assert not [finding for finding in static_check(app) if finding.code == "COD014"]


def test_super_in_an_unrelated_class_does_not_force_wrapper_mode(tmp_path):
    _, app, report = migrated(tmp_path, "unrelated_super", "sync")
    assert report.payload["transform"] == "extract", report.payload["wrapper_reason"]
    assert "super().__init__" in (app / "agent_server" / "agent.py").read_text()  # AnswerError is kept
