"""COD023: a name the entry module reads but never binds (checks/undefined_names.py). Before it, an async
migration whose predict_stream called a dropped `predict` imported fine and passed the code check."""

from __future__ import annotations

import textwrap

import pytest

from checks.undefined_names import undefined_names
from tests.test_code_migration import migrated, static_check


def names(source: str) -> list[tuple[str, int]]:
    return undefined_names(textwrap.dedent(source), "agent.py")


def test_a_function_calling_a_dropped_one_is_found_at_its_line():
    assert names("""
        async def predict_stream(request):
            for item in predict(request).output:
                yield item
        """) == [("predict", 3)]


def test_what_python_binds_is_not_reported():
    assert names("""
        import os
        from pathlib import Path as P
        COUNT = 0

        def bump(values):
            global COUNT, LATER
            COUNT += len([v for v in values if v])
            LATER = P(__file__).parent / os.sep
            return print, LATER

        class Agent:
            limit = COUNT

            def run(self):
                return Agent, self.limit, spark  # a notebook global: its own finding, COD065
        """) == []


def test_a_star_import_makes_the_module_unknowable():
    assert names("from tools import *\n\nanswer = ask()\n") == []


@pytest.fixture(autouse=True)
def workspace_env(monkeypatch):
    monkeypatch.setenv("DATABRICKS_HOST", "http://127.0.0.1:9")
    monkeypatch.setenv("DATABRICKS_TOKEN", "not-a-real-token")


def test_a_renamed_function_in_a_migrated_app_fails_the_check(tmp_path):
    _, app, _ = migrated(tmp_path, "stream_agent", "sync")
    entry = app / "agent_server" / "agent.py"
    assert not [finding for finding in static_check(app) if finding.code == "COD023"]
    text = entry.read_text()
    assert text.count("def predict_stream(") == 1
    entry.write_text(text.replace("def predict_stream(", "def stream_answer("))
    [finding] = [finding for finding in static_check(app) if finding.code == "COD023"]
    assert finding.severity == "error" and "`predict_stream`" in finding.message
    line = int(finding.path.rsplit(":", 1)[1])
    assert "predict_stream" in entry.read_text().splitlines()[line - 1]
