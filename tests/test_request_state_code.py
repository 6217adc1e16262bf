"""The code step and the code check on agents that write state per request (quick: no interpreter started).

obo_tools writes self._tools_dict per request and is cheap to build: the code step builds it per request, in
both modes, and the check agrees. obo_tools_expensive reads an artifact in load_context: the step refuses
(COD050), and so does the check. Hand-broken apps (one shared instance again, a global written per request)
fail the check.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.test_code_migration import CORPUS, migrated, static_check

BUILD_LINE = "request_agent = new_request_agent()  # this request's own agent"


def codes(findings, severity: str = "error") -> set[str]:
    return {finding.code for finding in findings if finding.severity == severity}


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_an_agent_writing_self_per_request_is_built_per_request(tmp_path, mode):
    _, app, report = migrated(tmp_path, "obo_tools", mode)
    state = report.payload["request_state"]
    assert report.payload["transform"] == "wrapper" and state["decision"] == "per_request"
    assert [(write["attribute"], write["line"]) for write in state["instance_writes"]] == [("_tools_dict", 54)]
    entry = (app / "agent_server" / "agent.py").read_text()
    handlers = entry.split("@invoke()")[1]
    assert BUILD_LINE in handlers and "AGENT." not in handlers
    assert "def new_request_agent() -> SalesAgent:" in entry
    assert "COD050" not in codes(report.findings) and "each request builds its own instance" in str(report.findings)
    findings = static_check(app)
    assert not {"COD050", "COD051", "COD052"} & codes(findings), findings


def test_hand_broken_back_to_one_shared_instance_fails_the_check(tmp_path):
    _, app, _ = migrated(tmp_path, "obo_tools", "sync")
    entry = app / "agent_server" / "agent.py"
    entry.write_text(entry.read_text().replace("request_agent = new_request_agent()", "request_agent = AGENT"))
    findings = [finding for finding in static_check(app) if finding.code in ("COD050", "COD052")]
    assert {finding.code for finding in findings} == {"COD050", "COD052"}
    shared = next(finding for finding in findings if finding.code == "COD050")
    assert "self._tools_dict" in shared.message and "AGENT" in shared.message and shared.path.endswith(":60")


def test_an_agent_expensive_to_build_is_refused_with_the_lines_and_two_ways_out(tmp_path):
    _, app, report = migrated(tmp_path, "obo_tools_expensive", "sync")
    state = report.payload["request_state"]
    assert state["decision"] == "refused" and state["factory"] is None
    assert {(cost["call"], cost["kind"]) for cost in state["construction_costs"]} == {
        ("open", "file"), ("json.load", "file")}
    [refusal] = [finding for finding in report.findings if finding.code == "COD050"]
    assert refusal.severity == "error" and "agent.py:58 _tools_dict" in refusal.message
    assert "agent.py:38 open" in refusal.message
    assert "local variables" in refusal.fix and "construction cheap" in refusal.fix
    assert "COD050" in codes(static_check(app))


def test_extract_mode_never_turns_self_writes_into_globals(tmp_path):
    """Extracted, `self._tools_dict = ...` would be `global _tools_dict`: the class is kept and built per request."""
    _, app, report = migrated(tmp_path, "obo_tools", "sync")
    assert "global " not in (app / "agent_server" / "agent.py").read_text()
    assert "writes self._tools_dict per request" in report.payload["wrapper_reason"]


def test_an_extracted_app_writing_a_global_per_request_fails_the_check(tmp_path):
    _, app, report = migrated(tmp_path, "obo_tools_stateless", "sync")
    assert report.payload["transform"] == "extract"
    entry = app / "agent_server" / "agent.py"
    text = entry.read_text()
    assert "tools = _build_tools(user_client)" in text
    entry.write_text(text.replace("tools = _build_tools(user_client)",
                                  "global LAST_TOOLS\n    LAST_TOOLS = tools = _build_tools(user_client)"))
    [finding] = [finding for finding in static_check(app) if finding.code == "COD051"]
    assert "LAST_TOOLS" in finding.message


def test_globals_and_class_attributes_written_per_request_are_refused(tmp_path):
    agent = tmp_path / "agent"
    shutil.copytree(CORPUS / "obo_tools_stateless", agent)
    text = (agent / "agent.py").read_text()
    text = text.replace("class SalesAgent(ResponsesAgent):\n", "CALLS = []\n\n\nclass SalesAgent(ResponsesAgent):\n")
    text = text.replace("        tools = self._build_tools(user_client)\n",
                        "        tools = self._build_tools(user_client)\n        CALLS.append(request)\n")
    (agent / "agent.py").write_text(text)
    import tests.test_code_migration as corpus

    original = corpus.CORPUS
    corpus.CORPUS = tmp_path
    try:
        _, app, report = migrated(tmp_path / "work", "agent", "sync")
    finally:
        corpus.CORPUS = original
    [refusal] = [finding for finding in report.findings if finding.code == "COD051"]
    assert refusal.severity == "error" and "CALLS" in refusal.message
    assert report.payload["request_state"]["shared_writes"][0]["attribute"] == "CALLS"
    assert "COD051" in codes(static_check(app))
    assert json.loads((app / "migration" / "reports" / "code.json").read_text())["status"] == "error"
