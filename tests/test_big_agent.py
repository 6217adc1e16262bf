"""A large agent file migrates without parsing its untouched functions with libcst (issue 14: a 2.2 MB agent
took `migrate code` 718 s and 1.1 GB). The work is bounded structurally (characters libcst parses), never
timed; `benchmarks/big_agent.py` prints the time and memory of the 2.2 MB case."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import libcst
import pytest

from scripts.analyze import analyze
from tests.steps import migrate_code
from scripts.core.reports import write_report
from tests.steps import scaffold
from scripts.transform import entry_segments
from scripts.transform.entry_segments import segment, top_level_statements

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.big_agent import agent_source, write_download  # noqa: E402

CORPUS = Path(__file__).parent / "fixtures" / "agents"


@pytest.fixture(autouse=True)
def workspace_env(monkeypatch):
    monkeypatch.setenv("DATABRICKS_HOST", os.environ.get("DATABRICKS_HOST", "http://127.0.0.1:9"))
    monkeypatch.setenv("DATABRICKS_TOKEN", os.environ.get("DATABRICKS_TOKEN", "not-a-real-token"))


def migrated_agent(workdir: Path, mode: str) -> tuple[str, list]:
    if not (workdir / "app").exists():
        write_report(*analyze(workdir))
        scaffold(workdir, "app", force=False)
    report = migrate_code(workdir, None, mode, force=True)
    findings = [(finding.code, finding.severity, finding.path, finding.message) for finding in report.findings]
    return (workdir / "app" / "agent_server" / "agent.py").read_text(), findings


def test_statements_are_cut_where_python_says_they_end():
    source = ('X = """\ndef not_a_function():\n"""\n\n\n@decorator\ndef f():\n    return 1\n# a comment\n\n'
              'if X:\n    pass\nelse:\n    pass\nCALL(\n1)\n')
    pieces = [text for text, _ in top_level_statements(source)]
    assert "".join(pieces) == source
    assert pieces == ['X = """\ndef not_a_function():\n"""\n\n\n', "@decorator\ndef f():\n    return 1\n# a comment\n\n",
                      "if X:\n    pass\nelse:\n    pass\n", "CALL(\n1)\n"]


def test_only_functions_free_of_the_words_transforms_act_on_are_hidden(monkeypatch):
    monkeypatch.setattr(entry_segments, "LARGE_SOURCE", 0)
    source = ("import os\n\n\ndef plain(x):\n    return x\n\n\ndef reads():\n    return open('artifacts/a.txt')\n\n\n"
              "def also_plain():\n    return 2\n\n\nclass Agent:\n    pass\n")
    segments = segment(source, {"Agent"})
    assert segments.hidden == ["def plain(x):\n    return x\n\n\n", "def also_plain():\n    return 2\n\n\n"]
    assert segments.bindings == {"plain", "also_plain"} and {"plain", "x", "return"} <= segments.names
    assert "def reads" in segments.text and "class Agent" in segments.text
    assert segments.restore(segments.text) == source
    # Line 5 of the text (`def reads`, after one marker line for four lines) is line 8 of the file.
    assert segments.text.splitlines()[4].startswith("def reads") and segments.original_line(5) == 8
    assert segments.restore(segments.text.replace(entry_segments.MARKER.format(number=1), "")) is None


def with_hidden_statements(folder: Path) -> bool:
    """Whether the corpus agent has top-level statements that would be hidden, were it large."""
    for path in folder.glob("*.py"):
        source = path.read_text()
        if source.endswith("\n") and entry_segments._segmented(source, set()).hidden:  # whatever its size
            return True
    return False


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_large_agent_is_migrated_as_the_whole_file_would_be(tmp_path, monkeypatch, mode):
    """The same app with and without hiding, on a generated agent and on the corpus agents that have
    statements to hide (forced by a zero size threshold)."""
    sources = [("generated", None)] + [(path.name, path) for path in sorted(CORPUS.iterdir())
                                       if with_hidden_statements(path)]
    assert len(sources) >= 3
    for name, folder in sources:
        workdir = tmp_path / name
        if folder is None:
            write_download(workdir, 120)
        else:
            shutil.copytree(folder, workdir / "original_mlflow_model")
            (workdir / "migration" / "source").mkdir(parents=True)
        results = []
        for threshold in (10 ** 9, 0):
            monkeypatch.setattr(entry_segments, "LARGE_SOURCE", threshold)
            results.append(migrated_agent(workdir, mode))
        assert results[0] == results[1], name


def test_libcst_parses_only_the_statements_that_may_change(tmp_path, monkeypatch):
    """4,000 helper functions (235 kB): libcst sees a few kB of them, whatever the machine's speed."""
    parsed = []
    original_parse = libcst.parse_module
    monkeypatch.setattr(libcst, "parse_module", lambda source, *args, **kwargs: (
        parsed.append(len(source)), original_parse(source, *args, **kwargs))[1])
    workdir = write_download(tmp_path / "work", 4000)
    size = len(agent_source(4000))
    assert size > entry_segments.LARGE_SOURCE
    code, findings = migrated_agent(workdir, "sync")
    assert "def helper_3999(value):" in code and "async def invoke_handler" in code
    assert [finding[0] for finding in findings] == []
    assert parsed and sum(parsed) < size / 20, (sum(parsed), size)
    report = json.loads((workdir / "app" / "migration" / "reports" / "code.json").read_text())
    assert report["payload"]["transform"] == "extract"


def test_the_blocking_call_search_parses_only_the_functions_it_reaches(tmp_path):
    """Async mode on 4,000 helpers: the same blocking calls as a full parse, with the called helper parsed."""
    from scripts.model import blocking, parsed_modules

    workdir = write_download(tmp_path / "work", 4000)
    migrated_agent(workdir, "async")
    package = workdir / "app" / "agent_server"
    assert (package / "agent.py").stat().st_size > parsed_modules.LARGE_MODULE
    roots = [("agent_server.agent", "invoke_handler"), ("agent_server.agent", "stream_handler")]
    lazy = parsed_modules.parse_app_modules(package, lazy=True)
    found = blocking.blocking_calls(lazy, roots)
    functions = lazy["agent_server.agent"].functions
    assert isinstance(functions, parsed_modules.LazyFunctions)
    parsed = [key for key, value in dict.items(functions) if not isinstance(value, tuple) and key.startswith("helper_")]
    assert len(parsed) <= 2 and "helper_0" in parsed  # the one called, and one next to a comment saying "import"
    assert found == blocking.blocking_calls(parsed_modules.parse_app_modules(package), roots)
    assert {site.kind for site in found} == {"llm-call"}
