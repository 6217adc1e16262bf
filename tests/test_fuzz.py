"""No input makes a step crash or hang: generated mutations of the files a user or a merge can break
(MLmodel, agent sources, requirements.txt, the source manifest, step reports), run in-process through
analyze, the requirement reader setup uses, and `migrate check`. Every run ends with findings or a
MigrateError (exit 0 or 1), never the bug exit 3, and within a time bound.

The quick suite runs a few examples of each; `pytest -m fuzz` runs many more.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import time
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scripts import cli
from scripts.analyze import analyze
from scripts.model.requirements import parse_requirements
from scripts.core.errors import MigrateError
from scripts.core.layout import MigrationLayout
from scripts.core.reports import StepReport, write_report
from scripts.setup import decide_dependencies, scaffold_dependencies
from scripts.source_facts import write_source_facts

FIXTURES = Path(__file__).parent / "fixtures" / "analyze"
QUICK, FUZZ = 8, 300
SECONDS_PER_RUN = 20  # generous: the machine is shared; a hang is minutes

json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
                           lambda children: st.lists(children, max_size=4) |
                           st.dictionaries(st.text(max_size=8), children, max_size=4), max_leaves=12)


@st.composite
def mutated(draw, original: bytes) -> bytes:
    """`original` with a few random edits: bytes inserted, deleted or overwritten, lines duplicated."""
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(0, len(data)))
        edit = draw(st.sampled_from(["insert", "delete", "replace", "conflict"]))
        if edit == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=16))
        elif edit == "delete":
            del data[position:position + draw(st.integers(1, 32))]
        elif edit == "replace":
            data[position:position + 1] = draw(st.sampled_from([b"\xff", b"\x00", b"\xe9", b"'", b'"', b":", b"[", b"{"]))
        else:
            data[position:position] = b"\n<<<<<<< HEAD\n=======\n>>>>>>> theirs\n"
    return bytes(data)


def ends_well(argv: list[str]) -> int:
    """`migrate ARGV` in-process, output swallowed: its exit code, which must not be the bug's."""
    started = time.monotonic()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()) as err:
        code = cli.main(argv)
    assert code in (0, 1), f"migrate {' '.join(argv)} exited {code}:\n{err.getvalue()[-3000:]}"
    assert time.monotonic() - started < SECONDS_PER_RUN
    return code


def budget(examples: int):
    return settings(max_examples=examples, deadline=timedelta(seconds=SECONDS_PER_RUN),
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


# ---------------------------------------------------------------------------------------------------- requirements


REQUIREMENT_WORDS = st.sampled_from(["requests==2.32.3", "--hash=sha256:" + "a" * 64, "-r", "-e", "git+https://h/x.git",
                                     "#egg=x", "\\", "#", " ", "\n", "@", ";", "python_version<'3'", "./p", "--pre",
                                     "-i https://i/simple", "[extra]", "mlflow>=2", "file:///x.whl", "\t", "=="])
requirement_texts = st.lists(REQUIREMENT_WORDS | st.text(max_size=12), max_size=30).map("".join) | st.text()


def read_requirements_everywhere(text: str) -> None:
    entries = parse_requirements(text)
    decisions = decide_dependencies(text.splitlines(), scaffold_dependencies())
    assert [entry["name"] for entry in entries if entry["name"]] == \
        [decision.package for decision in decisions if decision.package] or len(decisions) >= 0
    for decision in decisions:
        assert decision.reason, decision


@budget(QUICK * 4)
@given(requirement_texts)
def test_requirement_lines_never_crash(text):
    read_requirements_everywhere(text)


@pytest.mark.fuzz
@budget(FUZZ * 4)
@given(requirement_texts)
def test_requirement_lines_never_crash_fuzz(text):
    read_requirements_everywhere(text)


# ---------------------------------------------------------------------------------------------------- analyze


def analyze_or_refuse(workdir: Path) -> None:
    started = time.monotonic()
    try:
        layout, report = analyze(workdir)
        write_report(layout, report)
    except MigrateError:
        pass
    assert time.monotonic() - started < SECONDS_PER_RUN


def with_file(tmp_path_factory, fixture: str, name: str, content: bytes) -> Path:
    workdir = tmp_path_factory.mktemp("fuzz")
    shutil.copytree(FIXTURES / fixture, workdir / "original_mlflow_model")
    (workdir / "original_mlflow_model" / name).write_bytes(content)
    return workdir


MLMODEL = (FIXTURES / "openai_tools" / "MLmodel").read_bytes()
AGENT = (FIXTURES / "openai_tools" / "tool_agent.py").read_bytes()
agent_sources = (mutated(AGENT) | st.binary(max_size=200) |
                 st.text(max_size=200).map(lambda text: text.encode("latin-1", "replace")) |
                 st.integers(50, 3000).map(lambda depth: b"x = " + b"(" * depth + b"1" + b")" * depth + b"\n") |
                 st.integers(50, 400).map(lambda depth: b"".join(b"    " * i + b"if x:\n" for i in range(depth))
                                          + b"    " * depth + b"pass\n"))


@budget(QUICK)
@given(mutated(MLMODEL))
def test_analyze_survives_a_mutated_mlmodel(tmp_path_factory, content):
    analyze_or_refuse(with_file(tmp_path_factory, "openai_tools", "MLmodel", content))


@budget(QUICK)
@given(agent_sources)
def test_analyze_survives_a_broken_agent_source(tmp_path_factory, content):
    analyze_or_refuse(with_file(tmp_path_factory, "openai_tools", "tool_agent.py", content))


@pytest.mark.fuzz
@budget(FUZZ)
@given(mutated(MLMODEL) | st.binary(max_size=300))
def test_analyze_survives_a_mutated_mlmodel_fuzz(tmp_path_factory, content):
    analyze_or_refuse(with_file(tmp_path_factory, "openai_tools", "MLmodel", content))


@pytest.mark.fuzz
@budget(FUZZ)
@given(agent_sources)
def test_analyze_survives_a_broken_agent_source_fuzz(tmp_path_factory, content):
    analyze_or_refuse(with_file(tmp_path_factory, "openai_tools", "tool_agent.py", content))


# ---------------------------------------------------------------------------------------------------- migrate check


@pytest.fixture(scope="module")
def downloaded_workdir(tmp_path_factory) -> Path:
    """A working directory as `migrate download` leaves it, built from a fixture model without the network."""
    workdir = tmp_path_factory.mktemp("downloaded")
    layout = MigrationLayout.for_workdir(workdir)
    shutil.copytree(FIXTURES / "openai_tools", layout.original)
    model = {"uri": "models:/main.agents.fuzz/1", "name": "main.agents.fuzz", "version": "1", "endpoint": None,
             "served_entity": None, "traffic_percentage": None}
    manifest = write_source_facts(layout, layout.original, model)
    report = StepReport(step="download", inputs={
        "endpoint": None, "model_uri": model["uri"], "profile": None, "entity": None, "version": None,
        "registry_uri": "databricks-uc", "tracking_uri": "databricks", "force": False})
    report.outputs = {"original": "original_mlflow_model", "source": "migration/source"}
    report.payload = {"model": model, "action": "downloaded", "files": len(manifest["files"]),
                      "bytes": sum(entry["bytes"] for entry in manifest["files"].values()),
                      "digest": manifest["digest"]}
    write_report(layout, report)
    assert ends_well(["check", "download", "--workdir", str(workdir)]) == 0
    return workdir


def check_with(downloaded: Path, tmp_path_factory, relative: str, content: bytes) -> None:
    workdir = tmp_path_factory.mktemp("check")
    shutil.copytree(downloaded, workdir, dirs_exist_ok=True)
    (workdir / relative).write_bytes(content)
    ends_well(["check", "--workdir", str(workdir)])


def json_mutations(path: Path) -> st.SearchStrategy[bytes]:
    """The file with bytes edited, or one of its values replaced by any JSON value."""
    original = path.read_bytes()
    document = json.loads(original)

    def replace(key_and_value):
        key, value = key_and_value
        changed = dict(document)
        changed[key] = value
        return json.dumps(changed).encode()

    return mutated(original) | st.tuples(st.sampled_from(sorted(document)), json_values).map(replace)


@pytest.mark.parametrize("relative", ["migration/source/manifest.json", "migration/reports/download.json"])
def test_check_survives_a_mutated_manifest_or_report(downloaded_workdir, tmp_path_factory, relative):
    @budget(QUICK)
    @given(json_mutations(downloaded_workdir / relative))
    def run(content):
        check_with(downloaded_workdir, tmp_path_factory, relative, content)

    run()


@pytest.mark.fuzz
@pytest.mark.parametrize("relative", ["migration/source/manifest.json",
                                      "migration/reports/download.json",
                                      "migration/source/MLmodel", "original_mlflow_model/MLmodel"])
def test_check_survives_a_mutated_manifest_or_report_fuzz(downloaded_workdir, tmp_path_factory, relative):
    path = downloaded_workdir / relative
    strategy = json_mutations(path) if relative.endswith(".json") else mutated(path.read_bytes())

    @budget(FUZZ)
    @given(strategy)
    def run(content):
        check_with(downloaded_workdir, tmp_path_factory, relative, content)

    run()
