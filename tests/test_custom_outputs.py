"""Async mode's invoke collects the stream, so the class's predict is not called: the custom_outputs predict
returned are carried into the invoke when they read only the request, and named (COD009 warning, the line)
when they cannot be (issue 11 §5). Smoke's parity proves the carried ones at run time (tests/test_smoke.py)."""

from __future__ import annotations

import textwrap

import libcst as cst
import pytest

from scripts.transform.custom_outputs import predict_outputs
from tests.test_code_migration import migrated


def outputs_of(source: str):
    module = cst.parse_module(textwrap.dedent(source))
    [klass] = [node for node in module.body if isinstance(node, cst.ClassDef)]
    return predict_outputs(klass, 10, "agent.py")


def test_what_reads_only_the_request_is_carried_for_the_handlers_request():
    found = outputs_of("""
        class Agent(ResponsesAgent):
            def predict(self, req):
                outputs = [event.item for event in self.predict_stream(req)]
                return ResponsesAgentResponse(output=outputs, custom_outputs={"echo": dict(req.custom_inputs or {}),
                                                                             "keys": [k for k in req.custom_inputs]})
        """)
    assert found.carried == "{'echo': dict(request.custom_inputs or {}), 'keys': [k for k in request.custom_inputs]}"
    assert found.line == 13  # the class is at line 10 of the original; custom_outputs three lines below


@pytest.mark.parametrize("source, reason", [
    ("""
     class Agent(ResponsesAgent):
         def predict(self, request):
             return ResponsesAgentResponse(output=[], custom_outputs={"tools": sorted(self.tools)})
     """, "`self`"),
    ("""
     class Agent(ResponsesAgent):
         def predict(self, request):
             if request.custom_inputs:
                 return ResponsesAgentResponse(output=[], custom_outputs=request.custom_inputs)
             return ResponsesAgentResponse(output=[], custom_outputs={"empty": True})
     """, "different custom_outputs"),
])
def test_what_reads_more_than_the_request_is_not_carried(source, reason):
    found = outputs_of(source)
    assert found.carried is None and reason in found.reason


def test_a_predict_without_custom_outputs_has_nothing_to_carry():
    assert outputs_of("""
        class Agent(ResponsesAgent):
            def predict(self, request):
                return ResponsesAgentResponse(output=[])
        """) is None


def test_the_async_invoke_returns_what_predict_returned(tmp_path):
    """obo_tools' predict returns the request's custom_inputs as custom_outputs."""
    _, app, report = migrated(tmp_path, "obo_tools", "async")
    entry = (app / "agent_server" / "agent.py").read_text()
    invoke = entry.split("@invoke()")[1].split("@stream()")[0]
    assert "return ResponsesAgentResponse(output=outputs, custom_outputs=request.custom_inputs)" in invoke
    [finding] = [finding for finding in report.findings if finding.code == "COD009"]
    assert finding.severity == "info" and "agent.py:50" in finding.message and "returned by" in finding.message


def test_custom_outputs_that_cannot_be_carried_are_a_warning_at_their_line(tmp_path):
    """dotted_tools' predict returns the names of the tools it loaded (`self.tools`)."""
    _, app, report = migrated(tmp_path, "dotted_tools", "async")
    [finding] = [finding for finding in report.findings if finding.code == "COD009"]
    assert finding.severity == "warning" and "agent.py:26" in finding.message and "`self`" in finding.message
    assert "custom_outputs=" not in (app / "agent_server" / "agent.py").read_text().split("@invoke()")[1]
