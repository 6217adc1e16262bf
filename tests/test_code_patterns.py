"""Issue 11, patterns 1, 2, 3, 4, 6 and 9: code written for Model Serving or a notebook, on fixture agents of their own.

Each fixture declares its pattern and expected outcome (handled by the code step, or flagged with a finding at
the file and line). "Today's" outcome (before these patterns were handled) is reproduced by turning the
pattern hooks off: the step then says nothing while the app is broken, and the code check catches it.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import libcst as cst
import pytest

from checks.code_patterns import check_code_patterns
from scripts.core.layout import MigrationLayout
from scripts.model.parsed_modules import parse_app_modules, parsed_module
from scripts.model.import_calls import import_time_calls
from scripts.model.placeholders import placeholder_names, placeholders_in
from scripts.transform import patterns
from scripts.transform.container_paths import ContainerPathRewriter
from scripts.transform.cwd_files import WorkingDirectoryFileRewriter
from scripts.transform.notebook import clean_module
from tests.test_code_migration import CORPUS, migrated, static_check

pytestmark = pytest.mark.serial_minutes(1.5)  # run first under xdist: tests/conftest.py

# fixture → (pattern, what the step reports, what the code check reports as errors)
PATTERN_FIXTURES = {
    "supervisor_paths": ("1 container paths", {"COD060", "COD068"}, set()),
    "cwd_prompts": ("2 working-directory files", {"COD062"}, set()),
    "notebook_export": ("3 notebook export", {"COD064", "COD065", "COD066"}, {"COD065"}),
    "uc_toolkit_graph": ("4 calls at import", set(), set()),
    "dotted_tools": ("6 imports by name, 9 placeholders", {"COD068"}, set()),
}
PATTERN_CODES = {f"COD0{number}" for number in range(60, 80)}


@pytest.fixture(autouse=True)
def workspace_env(monkeypatch):
    monkeypatch.setenv("DATABRICKS_HOST", os.environ.get("DATABRICKS_HOST", "http://127.0.0.1:9"))
    monkeypatch.setenv("DATABRICKS_TOKEN", os.environ.get("DATABRICKS_TOKEN", "not-a-real-token"))


@pytest.fixture(scope="module")
def pattern_apps(tmp_path_factory):
    apps = {}
    for agent in PATTERN_FIXTURES:
        _, app, report = migrated(tmp_path_factory.mktemp(agent), agent, "sync")
        apps[agent] = (app, report, static_check(app))
    return apps


def today(monkeypatch):
    """The code step as it was before issue 11: no pattern hook."""
    monkeypatch.setattr(patterns, "clean_source", lambda source, app_path: (source, []))
    monkeypatch.setattr(patterns, "rewrite_paths", lambda module, source, model, depth, path_name: (module, []))
    monkeypatch.setattr(patterns, "add_original_names", lambda *args: [])


def codes(findings, severity=None) -> set[str]:
    return {finding.code for finding in findings if severity is None or finding.severity == severity}


def run_python(app: Path, code: str) -> subprocess.CompletedProcess:
    """A fresh interpreter in the app folder (these snippets import no MLflow: fast)."""
    return subprocess.run([sys.executable, "-c", code], cwd=app, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("agent", list(PATTERN_FIXTURES))
def test_each_pattern_fixture_is_handled_or_flagged(pattern_apps, agent):
    app, report, findings = pattern_apps[agent]
    _, step_codes, check_errors = PATTERN_FIXTURES[agent]
    assert codes(report.findings) & PATTERN_CODES == step_codes
    assert codes(findings, "error") == check_errors, findings
    if check_errors:  # never PASS for an agent whose pattern is only flagged
        assert all(finding.path.count(":") == 1 for finding in findings if finding.code in check_errors)


# ---------------------------------------------------------------------------------------------------- 1 container paths


def test_container_paths_were_kept_silently_and_now_point_at_the_apps_files(pattern_apps, tmp_path, monkeypatch):
    app, report, _ = pattern_apps["supervisor_paths"]
    settings = (app / "agent_server" / "supervisor" / "settings.py").read_text()
    assert 'CONFIG_PATH = Path(__file__).parent.parent / "artifacts" / "uc_config.yaml"' in settings
    assert 'PROMPTS_DIR = str(Path(__file__).parent.parent / "supervisor" / "prompts")' in settings
    loaded = run_python(app, "from agent_server.supervisor.settings import load_settings, worker_prompt\n"
                             "print(load_settings()['default_worker'], worker_prompt('outage')[:11])")
    assert loaded.stdout.split() == ["billing", "You", "are", "the"], loaded.stderr

    today(monkeypatch)
    _, old_app, old_report = migrated(tmp_path, "supervisor_paths", "sync")
    assert codes(old_report.findings) & PATTERN_CODES == set()  # silent
    failed = run_python(old_app, "from agent_server.supervisor.settings import load_settings\nload_settings()")
    assert "No such file or directory: '/model/artifacts/uc_config.yaml'" in failed.stderr
    flagged = [finding for finding in static_check(old_app) if finding.code == "COD061"]
    assert sorted(finding.path.rsplit("/", 1)[-1] for finding in flagged) == ["settings.py:10", "settings.py:9"]


def rewrite(source: str, rewriter_class, resolve, depth=0):
    rewriter = rewriter_class(resolve, depth, "Path")
    code = cst.metadata.MetadataWrapper(cst.parse_module(source)).visit(rewriter).code
    return code, [(site.code, site.line) for site in rewriter.sites]


def test_container_path_shapes():
    known = {"artifacts", "artifacts/a.yaml", "code/pkg/p.md"}
    resolve = lambda path: {"code/pkg/p.md": "pkg/p.md"}.get(path, path) if path in known else None  # noqa: E731
    code, sites = rewrite('import os\n'
                          'A = os.path.join("/model/artifacts", name)\n'
                          'B = os.path.join("/model", "artifacts", "a.yaml")\n'
                          'C = "/model/code/pkg/p.md"\n'
                          'D = Path("/model") / sub\n'
                          'E = f"/model/artifacts/{name}"\n'
                          'F = "/model/artifacts/missing.txt"\n', ContainerPathRewriter, resolve, depth=1)
    assert 'A = os.path.join(str(Path(__file__).parent.parent / "artifacts"), name)' in code
    assert 'B = str(Path(__file__).parent.parent / "artifacts" / "a.yaml")' in code
    assert 'C = str(Path(__file__).parent.parent / "pkg" / "p.md")' in code
    assert sites == [("COD060", 2), ("COD060", 3), ("COD060", 4), ("COD061", 5), ("COD061", 6), ("COD061", 7)]
    assert 'D = Path("/model") / sub' in code and '"/model/artifacts/missing.txt"' in code


# ---------------------------------------------------------------------------------------------------- 2 working directory


def test_working_directory_files_point_at_the_models_copies_or_are_errors(pattern_apps, tmp_path, monkeypatch):
    app, report, _ = pattern_apps["cwd_prompts"]
    entry = (app / "agent_server" / "agent.py").read_text()
    assert 'open(str(Path(__file__).parent / "system_prompt.txt"))' in entry
    assert 'Path(str(Path(__file__).parent / "artifacts" / "prompts" / "style.md")).read_text()' in entry
    assert 'yaml.safe_load(open(str(Path(__file__).parent / "artifacts" / "config.yaml")))' in entry

    today(monkeypatch)
    _, old_app, old_report = migrated(tmp_path / "old", "cwd_prompts", "sync")
    assert codes(old_report.findings) & PATTERN_CODES == set()  # silent, and the app cannot find its prompt
    lines = (old_app / "agent_server" / "agent.py").read_text().splitlines()
    flagged = [int(finding.path.rsplit(":", 1)[-1]) for finding in static_check(old_app) if finding.code == "COD063"]
    assert [lines[number - 1].split(" = ")[0] for number in sorted(flagged)] == ["SYSTEM_PROMPT", "STYLE", "CONFIG"]


def test_a_file_the_model_does_not_carry_is_an_error_and_writes_are_left_alone():
    resolve = lambda path: None  # noqa: E731
    code, sites = rewrite('NOTES = open("notes.txt").read()\nopen("out.json", "w").write("{}")\n'
                          'Path("cache.db")\nPath("facts.md").read_text()\n', WorkingDirectoryFileRewriter, resolve)
    assert sites == [("COD063", 1), ("COD063", 4)]
    assert 'open("notes.txt")' in code


# ---------------------------------------------------------------------------------------------------- 3 notebooks


def test_a_notebook_loses_magic_and_test_cells_and_its_globals_are_flagged(pattern_apps, tmp_path, monkeypatch):
    app, report, findings = pattern_apps["notebook_export"]
    entry = (app / "agent_server" / "agent.py").read_text()
    assert "# MAGIC" not in entry and "Databricks notebook source" not in entry and "Try the agent" not in entry
    assert "AGENT.predict(" not in entry and "print(event)" not in entry
    removed = [finding for finding in report.findings if finding.code == "COD066"]
    assert ["line 53" in removed[0].message, "line 57" in removed[1].message] == [True, True]
    [dbutils] = [finding for finding in findings if finding.code == "COD065"]
    line = int(dbutils.path.rsplit(":", 1)[1])
    assert entry.splitlines()[line - 1].startswith("CATALOG = dbutils.widgets.get")

    today(monkeypatch)
    _, old_app, old_report = migrated(tmp_path, "notebook_export", "sync")
    assert codes(old_report.findings) & PATTERN_CODES == set()
    old_findings = static_check(old_app)
    assert codes(old_findings) & {"COD065", "COD066"} == {"COD065", "COD066"}  # the test cells were kept


def test_notebook_cells_and_globals():
    source = ("# Databricks notebook source\n# MAGIC %pip install x\n\n# COMMAND ----------\n\nimport os\n"
              "AGENT = Agent()\nmlflow.models.set_model(AGENT)\n\n# COMMAND ----------\n\n"
              "display(AGENT.predict({}))\nresult = AGENT.invoke({})\n\n# COMMAND ----------\n\nspark.sql('x')\n")
    cleaned, sites = clean_module(source, "agent_server/agent.py")
    assert cleaned == ("import os\nAGENT = Agent()\nmlflow.models.set_model(AGENT)\n\n# COMMAND ----------\n\n"
                       "spark.sql('x')\n")
    assert [site.code for site in sites] == ["COD064", "COD066", "COD066"]
    assert [(site.code, site.line) for site in patterns.notebook.notebook_global_sites(cleaned)] == [("COD065", 7)]


# ---------------------------------------------------------------------------------------------------- 4 calls at import


def test_calls_at_import_are_listed_by_analyze_and_reported_by_the_check(pattern_apps):
    app, _, findings = pattern_apps["uc_toolkit_graph"]
    analysis = MigrationLayout.for_app(app).report_path("analyze").read_text()
    assert '"import_time_calls"' in analysis
    at_import = sorted((int(finding.path.rsplit(":", 1)[1]), finding.message.split("`")[1].removesuffix("(...)"))
                       for finding in findings if finding.code == "COD067")
    assert [call for _, call in at_import] == ["UCFunctionToolkit", "VectorSearchRetrieverTool", "WorkspaceClient",
                                               "workspace.serving_endpoints.get_open_ai_client",
                                               "mlflow.genai.load_prompt", "llm.invoke"]
    assert all(finding.severity == "warning" and "functools.cache" in finding.fix and "/health" in finding.message
               for finding in findings if finding.code == "COD067")


def test_only_calls_that_run_at_import_count():
    tree = ast.parse("from databricks.sdk import WorkspaceClient\nimport mlflow\n"
                     "def lazy():\n    return WorkspaceClient()\n"
                     "class Agent:\n    client = WorkspaceClient()\n    def m(self):\n        mlflow.get_run('x')\n"
                     "if True:\n    PROMPT = mlflow.get_prompt('p')\nfactory = lambda: WorkspaceClient()\n")
    module = parsed_module(tree, "agent", "agent.py")
    assert [(call.line, call.call) for call in import_time_calls(module)] == [(6, "WorkspaceClient"),
                                                                              (10, "mlflow.get_prompt")]


# ---------------------------------------------------------------------------------------------------- 6 imports by name


LOAD_TOOLS = ("import agent_server.original_names\nfrom agent_server.toolbox import load_tools\n"
              "from agent_server.toolbox.base import Tool\n"
              "tools, _ = load_tools('agent_server/artifacts/tools.yaml')\n"
              "import toolbox.base\nassert toolbox.base.Tool is Tool\n"
              "print(sorted(tools), tools['outages'].run('porto?'))\n")


def test_modules_named_as_strings_load_the_apps_one_copy(pattern_apps, tmp_path, monkeypatch):
    app, report, findings = pattern_apps["dotted_tools"]
    entry = (app / "agent_server" / "agent.py").read_text()
    assert entry.splitlines()[1] == "import agent_server.original_names  # code_paths modules under their original names (migrate code)"
    loaded = run_python(app, LOAD_TOOLS)
    assert loaded.stdout.strip() == "['clock', 'outages'] porto: fibre maintenance until 14:00", loaded.stderr

    today(monkeypatch)
    _, old_app, old_report = migrated(tmp_path, "dotted_tools", "sync")
    assert codes(old_report.findings) & PATTERN_CODES == set()
    failed = run_python(old_app, LOAD_TOOLS.split("\n", 1)[1])
    assert "No module named 'toolbox'" in failed.stderr
    flagged = [finding for finding in static_check(old_app) if finding.code == "COD069"]
    assert [finding.path.split("/", 1)[1] for finding in flagged] == [
        "agent_server/artifacts/tools.yaml:5", "agent_server/artifacts/tools.yaml:6"]


def test_a_code_paths_package_that_is_also_a_requirement_is_said_once(tmp_path):
    workdir = tmp_path / "work"
    import shutil

    from scripts.analyze import analyze
    from scripts.core.reports import write_report
    from tests.steps import scaffold
    from tests.steps import migrate_code

    shutil.copytree(CORPUS / "dotted_tools", workdir / "original_mlflow_model")
    (workdir / "migration" / "source").mkdir(parents=True)
    requirements = workdir / "original_mlflow_model" / "requirements.txt"
    requirements.write_text(requirements.read_text() + "toolbox==0.3.0\n")
    write_report(*analyze(workdir))
    scaffold(workdir, "corpus-app", force=False)
    report = migrate_code(workdir, None, "sync", force=False)
    [both] = [finding for finding in report.findings if finding.code == "COD070"]
    assert "`toolbox==0.3.0`" in both.message and both.severity == "warning"


def test_a_name_the_app_does_not_have_is_an_error(pattern_apps, tmp_path):
    app, _, _ = pattern_apps["dotted_tools"]
    import shutil

    copy = tmp_path / app.name
    shutil.copytree(app, copy)
    config = copy / "agent_server" / "artifacts" / "tools.yaml"
    config.write_text(config.read_text().replace("toolbox.tools.clock", "toolbox.tools.calendar"))
    findings = check_code_patterns(MigrationLayout.for_app(copy), parse_app_modules(copy / "agent_server"))
    [missing] = [finding for finding in findings if finding.code == "COD069"]
    assert missing.path.endswith("tools.yaml:5") and "toolbox.tools.calendar" in missing.message


# ---------------------------------------------------------------------------------------------------- 9 placeholders


def test_placeholder_names_are_warned_about_in_analyze_and_the_check(pattern_apps):
    app, _, findings = pattern_apps["dotted_tools"]
    warned = {finding.path.split("/", 1)[1]: finding.message for finding in findings if finding.code == "COD071"}
    assert set(warned) == {"MLmodel resources (analyze.json)", "agent_server/artifacts/tools.yaml"}
    assert "mcp-telco-outage-info-{env}" in warned["MLmodel resources (analyze.json)"]
    assert "{{CATALOG}}.support.lookup_outage" in warned["MLmodel resources (analyze.json)"]
    analysis = MigrationLayout.for_app(app).report_path("analyze").read_text()
    assert '"ANA041"' in analysis


def test_placeholder_shapes():
    assert placeholders_in("mcp-telco-outage-info-{env}") == ("{env}",)
    assert placeholders_in("{{CATALOG}}.tools.f") == ("{{CATALOG}}",)
    assert placeholders_in("${ENV}-index") == ("${ENV}",)
    assert placeholders_in("${var.experiment_id}") == ()  # a bundle variable, filled at deploy
    assert placeholders_in("Answer about {topic} briefly") == ()  # a prompt template, not a name
    assert [item.where for item in placeholder_names({"a": [{"name": "x-{env}"}, "y"]})] == ["a[0].name"]


# ---------------------------------------------------------------------------------------------------- e2e: smoke


# fixture, mode, parity: the original of a container-path or working-directory agent cannot run on this machine
# (no /model; the original runs in a scratch folder), so those apps are smoke-tested without parity.
SMOKED = [("notebook_export", "sync", "exact"), ("notebook_export", "async", "exact"), ("dotted_tools", "sync", "exact"),
          ("supervisor_paths", "sync", "off"), ("cwd_prompts", "sync", "off")]


@pytest.mark.e2e
@pytest.mark.parametrize(("agent", "mode", "parity"), SMOKED, ids=[f"{a}-{m}" for a, m, _ in SMOKED])
def test_a_pattern_fixture_answers_through_smoke(agent, mode, parity, standin_workspace, tmp_path):
    import json
    import shutil

    from tests.conftest import migrate_in_process

    workdir = tmp_path / "work"
    shutil.copytree(CORPUS / agent, workdir / "original_mlflow_model")
    (workdir / "migration" / "source").mkdir(parents=True)
    env = standin_workspace.environ()
    for argv in (["analyze"], ["scaffold", "--app-name", "pattern-app"], ["code", "--mode", mode]):
        completed = migrate_in_process(*argv, "--workdir", str(workdir), env=env)
        # The notebook's dbutils use is an error the user fixes (COD065); the app still imports and answers.
        assert completed.returncode == 0 or "COD065" in completed.stdout + completed.stderr, completed.stdout
    app = workdir / "pattern-app"
    completed = migrate_in_process("smoke", "--workdir", str(workdir), "--app", str(app), "--python", sys.executable,
                            "--parity", parity, env=env)
    report = json.loads((app / "migration" / "reports" / "smoke.json").read_text())
    assert completed.returncode == 0, completed.stdout + completed.stderr
    # Without parity the only finding is that it was skipped (SMK016, a warning).
    assert [finding["code"] for finding in report["findings"] if finding["severity"] != "info"] == \
        ([] if parity == "exact" else ["SMK016"])
    assert report["payload"]["parity"]["status"] == ("ran" if parity == "exact" else "skipped")
    if parity == "exact":
        assert report["payload"]["comparison"] == "exact"
