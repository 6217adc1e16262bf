"""One reading of the model: analyze and code name the same agent class, entry file and handlers, for every
fixture agent and example; what neither can migrate is a finding, never a traceback."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest
import yaml

from scripts.analyze import analyze
from tests.steps import migrate_code
from scripts.core.errors import MigrateError
from scripts.core.reports import write_report
from tests.steps import scaffold

TESTS = Path(__file__).parent
ROOT = TESTS.parent
MODELS = sorted([*(TESTS / "fixtures" / "agents").iterdir(), *(TESTS / "fixtures" / "analyze").iterdir()])
EXAMPLES = sorted(path for path in (ROOT / "examples").iterdir() if (path / "log_model.py").is_file())
APP = "one-app"


@pytest.fixture(autouse=True)
def workspace_env(monkeypatch):
    monkeypatch.setenv("DATABRICKS_HOST", "http://127.0.0.1:9")
    monkeypatch.setenv("DATABRICKS_TOKEN", "not-a-real-token")


def as_download(example: Path, target: Path) -> None:
    """An example laid out as MLflow downloads it (entry at the root, code/, artifacts/), without logging it."""
    shutil.copytree(example, target, ignore=shutil.ignore_patterns("log_model.py", "config.yml", "__pycache__"))
    flavor = {"loader_module": "mlflow.pyfunc.loaders.code_model", "model_code_path": f"/src/{example.name}/agent.py",
              "python_version": "3.11.7"}
    if (example / "code").is_dir():
        flavor["code"] = "code"
    if (example / "artifacts").is_dir():
        flavor["artifacts"] = {path.stem: {"path": f"artifacts/{path.name}", "uri": str(path)}
                               for path in sorted((example / "artifacts").iterdir())}
    if (example / "config.yml").is_file():
        flavor["config"] = yaml.safe_load((example / "config.yml").read_text())
    mlmodel = {"flavors": {"python_function": flavor}, "metadata": {"task": "agent/v1/responses"},
               "mlflow_version": "3.17.0"}
    (target / "MLmodel").write_text(yaml.safe_dump(mlmodel))


def analyzed_workdir(tmp_path: Path, model: Path) -> tuple[Path, dict]:
    workdir = tmp_path / "work"
    if (model / "MLmodel").is_file():
        shutil.copytree(model, workdir / "original_mlflow_model")
    else:
        as_download(model, workdir / "original_mlflow_model")
    (workdir / "migration" / "source").mkdir(parents=True)
    layout, report = analyze(workdir)
    write_report(layout, report)
    scaffold(workdir, APP, force=False)
    return workdir, report.payload


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("model", MODELS + EXAMPLES, ids=lambda path: f"{path.parent.name}/{path.name}")
def test_analyze_and_code_name_the_same_class_entry_and_handlers(model, mode, tmp_path):
    workdir, analysis = analyzed_workdir(tmp_path, model)
    agent = analysis["agent_class"]
    try:
        report = migrate_code(workdir, None, mode, force=False)
    except MigrateError as refused:
        # What analyze could not name a class for, code refuses with a finding of its own; so is a name clash.
        assert agent is None or analysis["model_kind"] != "models-from-code" or any(
            item["syntax_error"] for item in analysis["source_files"]) or "already uses the name" in str(refused)
        assert refused.code in ("COD001", "COD002", "COD021"), refused
        return
    payload = report.payload
    if analysis["model_kind"] == "langchain":  # no class: the runnable set_model registers (shapes)
        assert agent is None and payload["transform"] == "langchain"
        assert payload["agent_class"] == analysis["set_model_calls"][-1]["target"]
        return
    assert agent is not None
    assert payload["agent_class"] == agent["name"]
    entry = analysis["entry_file"]["path"] if analysis["entry_file"] else "python_model.pkl"  # pickled (shapes)
    assert payload["entry_source"] == f"original_mlflow_model/{entry}"
    present = {name for name, method in agent["methods"].items()
               if name in ("predict", "predict_stream") and method["present"]}
    served = set(payload["served_methods"])
    if payload["transform"] == "not_converted":
        assert served == set()
        return
    assert ("predict_stream" in served) == ("predict_stream" in present)
    # A kept class may inherit predict from outside the model's files (the interface requires it).
    assert "predict" not in served or "predict" in present or payload["transform"] in ("wrapper", "chat_wrapper")
    assert served


def test_the_leaf_class_is_migrated_not_its_base(tmp_path):
    """Base(ResponsesAgent) then Leaf(Base) and a set_model of a factory: both steps take Leaf, built by the factory."""
    workdir, analysis = analyzed_workdir(tmp_path, TESTS / "fixtures" / "agents" / "base_leaf")
    assert analysis["agent_class"]["name"] == "Leaf"
    report = migrate_code(workdir, None, "sync", force=False)
    assert report.payload["agent_class"] == "Leaf"
    assert report.payload["transform"] == "wrapper"  # Leaf derives from Base: an inheritance chain
    entry = (workdir / APP / "agent_server" / "agent.py").read_text()
    # The factory set_model registered builds the agent, as it did on Model Serving (ANA050).
    assert "AGENT = make_agent()" in entry and "mlflow.models.set_model(" not in entry


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module} | {
        alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}


def test_no_check_imports_a_step_module():
    """A check verifies a step's output from the files, never through the step's own code: checks import the
    core (scripts/core/), the model readers (scripts/model/) and file libraries, never `scripts.<step>` or one
    of its parts (`scripts.<step>_*`)."""
    from scripts.steps import COMMANDS

    step_modules = {command.module for command in COMMANDS}
    for path in sorted((ROOT / "checks").glob("*.py")):
        for name in imported_modules(path):
            assert not any(name == step or name.startswith(step + "_") or name.startswith(step + ".")
                           for step in step_modules), f"checks/{path.name} imports {name}"


def test_the_model_package_imports_no_step_module():
    for path in (ROOT / "scripts" / "model").glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("scripts."):
                assert node.module.startswith("scripts.model"), (path.name, node.module)


# ---------------------------------------------------------------------------------------------------- issue 14 rows


def code_exit(workdir: Path, capsys) -> tuple[int, str]:
    from scripts.cli import main

    capsys.readouterr()
    status = main(["code", "--mode", "sync", "--workdir", str(workdir)])
    return status, capsys.readouterr().err


@pytest.mark.parametrize("broken, where", [
    ("flavors: [unclosed\n", "original_mlflow_model/MLmodel:1"),
    ("flavors:\n  - python_function\n  - loader_module\n", "original_mlflow_model/MLmodel:1"),
    ("artifact_path: agent\nflavors:\n  python_function: {loader_module: x\n", "original_mlflow_model/MLmodel:3"),
])
def test_code_on_an_unreadable_mlmodel_is_a_finding_with_file_and_line(broken, where, tmp_path, capsys):
    workdir, _ = analyzed_workdir(tmp_path, TESTS / "fixtures" / "agents" / "stream_agent")
    (workdir / "original_mlflow_model" / "MLmodel").write_text(broken)
    status, err = code_exit(workdir, capsys)
    assert status == 1, err
    assert "[COD021]" in err and where in err


@pytest.mark.parametrize("damage, message", [
    (lambda text: text.replace("def predict_stream(", "def predict_stream(:", 1), "not valid Python"),
    (lambda text: text.replace("# ", "# caf\xe9 ", 1), "is not UTF-8"),
])
def test_code_on_an_agent_that_is_not_python_is_a_finding_with_file_and_line(damage, message, tmp_path, capsys):
    workdir = tmp_path / "work"
    shutil.copytree(TESTS / "fixtures" / "agents" / "stream_agent", workdir / "original_mlflow_model")
    entry = workdir / "original_mlflow_model" / "agent.py"
    damaged = damage(entry.read_text())
    entry.write_bytes(damaged.encode("latin-1"))  # é as the single byte 0xe9, not UTF-8
    line = next(number for number, text in enumerate(damaged.splitlines(), start=1)
                if text not in entry.read_text(encoding="latin-1").splitlines() or "predict_stream(:" in text
                or "caf\xe9" in text)
    (workdir / "migration" / "source").mkdir(parents=True)
    write_report(*analyze(workdir))
    scaffold(workdir, APP, force=False)
    status, err = code_exit(workdir, capsys)
    assert status == 1, err
    assert "[COD021]" in err and f"original_mlflow_model/agent.py:{line}" in err and message in err


def test_a_code_module_that_is_not_utf8_is_a_finding_with_file_and_line(tmp_path, capsys):
    workdir, _ = analyzed_workdir(tmp_path, TESTS / "fixtures" / "agents" / "subpackage")
    module = next(path for path in sorted((workdir / "original_mlflow_model" / "code").rglob("*.py"))
                  if path.read_text().strip())
    module.write_bytes(b"# -*- coding: latin-1 -*-\n# caf\xe9\n" + module.read_bytes())
    write_report(*analyze(workdir))  # valid Python (it declares its encoding), but not UTF-8
    status, err = code_exit(workdir, capsys)
    assert status == 1, err
    relative = module.relative_to(workdir).as_posix()
    assert "[COD021]" in err and f"{relative}:2" in err and "0xe9" in err


def test_analyze_says_how_to_download_again(tmp_path):
    workdir, _ = analyzed_workdir(tmp_path, TESTS / "fixtures" / "agents" / "stream_agent")
    (workdir / "migration" / "reports" / "download.json").write_text(
        '{"inputs": {"endpoint": "my-agent", "model_uri": null, "profile": "dev", "registry_uri": "databricks-uc"}}')
    (workdir / "original_mlflow_model" / "MLmodel").write_text("flavors: [unclosed\n")
    with pytest.raises(MigrateError) as refused:
        analyze(workdir)
    assert refused.value.code == "ANA020"
    assert (f"`migrate download --force --endpoint my-agent --profile dev --registry-uri databricks-uc "
            f"--workdir {workdir.resolve()}`") in refused.value.fix


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_starting_an_event_loop_on_the_request_path_is_an_error_in_both_modes(mode, tmp_path):
    workdir = tmp_path / "work"
    shutil.copytree(TESTS / "fixtures" / "agents" / "stream_agent", workdir / "original_mlflow_model")
    entry = workdir / "original_mlflow_model" / "agent.py"
    text = entry.read_text()
    assert "    def predict_stream(" in text
    entry.write_text("import asyncio\n" + text.replace(
        "    def predict_stream(",
        "    def warm_up(self):\n        return asyncio.run(asyncio.sleep(0))\n\n    def predict_stream(", 1))
    text = entry.read_text()
    # predict_stream (which invoke uses in both modes) calls the helper that starts a loop
    def_end = text.index(":\n", text.index("    def predict_stream(")) + 1
    entry.write_text(text[:def_end] + "\n        self.warm_up()" + text[def_end:])
    (workdir / "migration" / "source").mkdir(parents=True)
    write_report(*analyze(workdir))
    scaffold(workdir, APP, force=False)
    report = migrate_code(workdir, None, mode, force=False)
    loops = [finding for finding in report.findings if finding.code == "COD022"]
    assert loops and all(finding.severity == "error" for finding in loops), report.findings
    assert "asyncio.run" in loops[0].message
