"""The step contract and the verdict: no step exits 0 with an error, and `migrate check` never says PASS for a
migration with a recorded error, a lost report, an edited claim, a change after the smoke test, or a check
that could not run. Each test builds the migration it breaks from a real fixture model and the real steps."""

from __future__ import annotations

import fcntl
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from checks.code_claims import check_code_claims
from scripts import cli
from scripts.core.layout import MigrationLayout
from scripts.steps import STEPS

REPO = Path(__file__).resolve().parent.parent
ANALYZE_FIXTURES = REPO / "tests" / "fixtures" / "analyze"
APP = "verdict-app"


def migrate(*argv: str) -> int:
    return cli.main([*argv])


def fixture_app(tmp_path: Path, fixture: str = "openai_tools", edit=None, steps=("code",)) -> Path:
    """A working directory with the fixture model, analyzed and scaffolded, through the named later steps."""
    workdir = tmp_path / "work"
    shutil.copytree(ANALYZE_FIXTURES / fixture, workdir / "original_mlflow_model")
    if edit:
        edit(workdir / "original_mlflow_model")
    assert migrate("analyze", "--workdir", str(workdir)) in (0, 1)
    assert migrate("scaffold", "--app-name", APP, "--workdir", str(workdir)) == 0
    if "code" in steps:
        migrate("code", "--mode", "sync", "--workdir", str(workdir))
    return workdir


def report_of(workdir: Path, step: str) -> dict:
    return json.loads((workdir / APP / "migration" / "reports" / f"{step}.json").read_text())


def rewrite_report(workdir: Path, step: str, change) -> None:
    path = workdir / APP / "migration" / "reports" / f"{step}.json"
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document))


# ------------------------------------------------------------------------------------------ the step contract


def writes_a_global_per_request(model_dir: Path) -> None:
    agent = model_dir / "tool_agent.py"
    agent.write_text(agent.read_text().replace(
        "    def predict(self, request):\n",
        "    def predict(self, request):\n        global SERVED\n        SERVED = request\n"))


def test_a_step_that_records_an_error_exits_1(tmp_path, capsys):
    # A global written per request is refused (COD051 error); the code step used to exit 0 with its errors.
    workdir = fixture_app(tmp_path, edit=writes_a_global_per_request, steps=())
    capsys.readouterr()
    assert migrate("code", "--mode", "sync", "--workdir", str(workdir)) == 1
    out = capsys.readouterr().out
    assert "error: [COD051]" in out and out.rstrip().endswith("code: error")
    assert report_of(workdir, "code")["status"] == "error"


def test_help_loads_no_step_module():
    probe = ("import sys; from scripts import cli; cli.build_parser(cli.chosen_command(['--help']));"
             "print(sorted(m for m in sys.modules if m.split('.')[0] in ('mlflow', 'libcst', 'databricks', 'checks')"
             " or m in [s.module for s in __import__('scripts.steps').steps.COMMANDS]))")
    completed = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "[]"
    shown = subprocess.run([sys.executable, "-m", "scripts.cli", "--help"], capture_output=True, text=True, cwd=REPO)
    assert shown.returncode == 0 and all(step.name in shown.stdout for step in STEPS)


def test_a_second_step_in_the_same_workdir_is_refused_with_the_holder(tmp_path, capsys):
    workdir = tmp_path / "work"
    shutil.copytree(ANALYZE_FIXTURES / "openai_tools", workdir / "original_mlflow_model")
    with open(workdir / ".migrate.lock", "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        held.write("`migrate code` (pid 4242)")
        held.flush()
        assert migrate("analyze", "--workdir", str(workdir)) == 1
    err = capsys.readouterr().err
    assert "in use by `migrate code` (pid 4242)" in err and "fix:" in err
    assert not (workdir / "migration" / "reports" / "analyze.json").exists()
    assert migrate("analyze", "--workdir", str(workdir)) == 0  # released: the next run goes ahead



def holding(path: Path, mode: int, note: str = ""):
    """Another process's lock, as a step holds it (an flock on its own open file, noted)."""
    held = open(path, "a+")
    fcntl.flock(held, mode)
    if note:
        held.write(note)
        held.flush()
    return held


def test_steps_on_two_apps_of_one_workdir_run_side_by_side_but_not_on_one_app(tmp_path, capsys):
    """App steps share the working directory and hold their own app: a step on another app goes ahead, a
    second step on the same app is refused with the holder, and so is a workdir step (it refreshes every app)."""
    workdir = fixture_app(tmp_path, steps=())
    with holding(workdir / ".migrate.lock", fcntl.LOCK_SH), \
            holding(workdir / f".migrate.{APP}.lock", fcntl.LOCK_EX, "`migrate smoke` (pid 4242)"):
        assert migrate("scaffold", "--app-name", "other-app", "--workdir", str(workdir)) == 0
        assert migrate("code", "--mode", "sync", "--app", str(workdir / "other-app")) == 0
        assert migrate("code", "--mode", "sync", "--app", str(workdir / APP)) == 1
        assert f"{workdir / APP} is in use by `migrate smoke` (pid 4242)" in capsys.readouterr().err
        assert migrate("analyze", "--workdir", str(workdir)) == 1
        assert f"in use by `migrate smoke` (pid 4242) on {APP}" in capsys.readouterr().err
    assert not (workdir / APP / "migration" / "reports" / "code.json").exists()
    with holding(workdir / ".migrate.lock", fcntl.LOCK_EX, "`migrate download` (pid 4343)"):
        assert migrate("code", "--mode", "sync", "--app", str(workdir / "other-app")) == 1
        assert "in use by `migrate download` (pid 4343)" in capsys.readouterr().err
    assert migrate("code", "--mode", "sync", "--app", str(workdir / APP)) == 0  # released: it goes ahead


def test_a_name_the_scaffold_refuses_puts_no_lock_file_outside_the_workdir(tmp_path):
    workdir = fixture_app(tmp_path, steps=())
    assert migrate("scaffold", "--app-name", "../escaped", "--workdir", str(workdir)) == 1
    assert sorted(path.name for path in tmp_path.iterdir()) == ["work"]


# ------------------------------------------------------------------------------------------------- the verdict


def test_an_error_the_step_recorded_fails_the_check_even_when_its_check_cannot_see_it(tmp_path, capsys):
    workdir = fixture_app(tmp_path, steps=())
    assert migrate("check", "scaffold", "--workdir", str(workdir)) == 0

    def recorded_error(document):  # what a step records when it finds an error its check does not re-derive
        document["findings"].append({"code": "SCF999", "severity": "error", "path": APP, "message": "broken",
                                     "fix": "re-run"})
        document["status"] = "error"

    rewrite_report(workdir, "scaffold", recorded_error)
    capsys.readouterr()
    assert migrate("check", "scaffold", "--workdir", str(workdir)) == 1
    out = capsys.readouterr().out
    assert "SCF999" in out and "verdict: FAIL" in out


def test_a_status_its_findings_contradict_is_an_edited_report(tmp_path, capsys):
    workdir = fixture_app(tmp_path, steps=())

    def hidden_error(document):
        document["findings"].append({"code": "SCF999", "severity": "error", "path": APP, "message": "broken",
                                     "fix": "re-run"})  # status left at ok

    rewrite_report(workdir, "scaffold", hidden_error)
    capsys.readouterr()
    assert migrate("check", "scaffold", "--workdir", str(workdir)) == 1
    assert "CHK005" in capsys.readouterr().out


def test_a_lost_report_fails_the_plain_check_and_a_step_not_run_is_unverified(tmp_path, capsys):
    workdir = fixture_app(tmp_path, steps=())  # no download report (the fixture was copied), then analyze, scaffold
    capsys.readouterr()
    assert migrate("check", "--workdir", str(workdir), "--json") == 1
    result = json.loads(capsys.readouterr().out)
    assert result["verdict"] == "FAIL"
    by_code = {}
    for finding in result["findings"]:
        by_code.setdefault(finding["code"], []).append(finding)
    assert [f["path"] for f in by_code["CHK004"]] == [f"{APP}/migration/reports/download.json"]
    assert "lost a step" in by_code["CHK004"][0]["message"]
    assert {f["severity"] for f in by_code["CHK007"]} == {"unverified"}
    assert {Path(f["path"]).stem for f in by_code["CHK007"]} == {"setup", "code", "smoke", "resources"}


def test_no_workspace_for_the_agents_import_is_unverified_not_fail(tmp_path, capsys, monkeypatch):
    # The fixture builds a WorkspaceClient at import; this machine has no credentials for it.
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", str(tmp_path / "no-such.cfg"))
    for key in ("DATABRICKS_HOST", "DATABRICKS_TOKEN", "DATABRICKS_CONFIG_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    workdir = fixture_app(tmp_path)
    capsys.readouterr()
    assert migrate("check", "code", "--workdir", str(workdir)) == 4
    out = capsys.readouterr().out
    assert "UNVERIFIED COD040" in out and "--profile PROFILE" in out and "verdict: UNVERIFIED" in out
    assert "COD012" not in out


def test_the_code_reports_mode_must_match_its_handlers(tmp_path):
    workdir = fixture_app(tmp_path)
    layout = MigrationLayout.for_app(workdir / APP)
    assert check_code_claims(layout) == []

    rewrite_report(workdir, "code", lambda document: document["payload"].update(mode="async"))
    assert {finding.code for finding in check_code_claims(layout)} == {"COD042"}

    rewrite_report(workdir, "code", lambda document: document["payload"].update(mode="sync"))
    entry = workdir / APP / "agent_server" / "agent.py"
    entry.write_text(entry.read_text().replace("async def invoke_handler", "def invoke_handler"))
    findings = check_code_claims(layout)
    assert [finding.code for finding in findings] == ["COD041"]
    assert "event loop" in findings[0].message


# ------------------------------------------------------------------------------------ what a report may steer


def test_a_report_path_out_of_the_app_is_refused_and_nothing_outside_is_touched(tmp_path, capsys):
    workdir = fixture_app(tmp_path)
    victim = tmp_path / "victim.txt"
    victim.write_text("the user's file")

    def escape(document):
        document["payload"]["files"].append({"path": "agent_server/../../../victim.txt", "source": "x.py",
                                             "sha256": "0" * 64})

    rewrite_report(workdir, "code", escape)
    capsys.readouterr()
    assert migrate("code", "--mode", "sync", "--force", "--workdir", str(workdir)) == 1
    err = capsys.readouterr().err
    assert "[CHK003]" in err and "code.json breaks its schema" in err and "Traceback" not in err
    assert victim.read_text() == "the user's file"


def test_a_report_that_is_not_json_stops_the_step_that_reads_it(tmp_path, capsys):
    workdir = fixture_app(tmp_path, steps=())
    (workdir / APP / "migration" / "reports" / "scaffold.json").write_text("<<<<<<< HEAD\n")
    capsys.readouterr()
    assert migrate("code", "--mode", "sync", "--workdir", str(workdir)) == 1
    assert "[CHK002]" in capsys.readouterr().err


def test_a_working_directory_step_rerun_after_scaffold_refreshes_the_apps_copy(tmp_path):
    workdir = fixture_app(tmp_path, steps=())
    app_copy = workdir / APP / "migration" / "reports" / "analyze.json"
    agent = workdir / "original_mlflow_model" / "tool_agent.py"
    agent.write_text(agent.read_text() + "\n# a new version of the agent\n")
    assert migrate("analyze", "--workdir", str(workdir)) in (0, 1)
    assert app_copy.read_bytes() == (workdir / "migration" / "reports" / "analyze.json").read_bytes()
    app_copy.write_text("{}")  # a stale copy in the app: scaffold --force refreshes it from the working directory
    assert migrate("scaffold", "--app-name", APP, "--force", "--workdir", str(workdir)) == 0
    assert app_copy.read_bytes() == (workdir / "migration" / "reports" / "analyze.json").read_bytes()


# ------------------------------------------------------------------------------------------------ the registry


def test_agents_md_and_the_demo_follow_the_registrys_order(tmp_path):
    from scripts import demo

    agents = (REPO / "AGENTS.md").read_text()
    rows = [line.split("|")[1].strip() for line in agents.splitlines() if line.startswith("| ")]
    table = [row for row in rows if row in {step.name for step in STEPS}]
    assert table == [step.name for step in STEPS]
    plan = demo.pipeline("openai_tools", "ep", {"registry_uri": "r", "tracking_uri": "t"}, tmp_path, ["sync"])
    names = [step[0] for step in plan.steps if isinstance(step, list) and step[0] != "check"]
    assert names == [step.name for step in STEPS]
    readme = (REPO / "README.md").read_text()
    shown = [line.split()[3] for line in readme.splitlines() if line.startswith("uv run migrate ")]
    assert [name for name in shown if name != "check"] == [step.name for step in STEPS]


def test_every_step_names_a_skill_that_explains_its_codes():
    for step in STEPS:
        skill = REPO / "skills" / step.skill / "SKILL.md"
        assert skill.is_file(), step.name
        assert step.code_prefixes


# -------------------------------------------------------------------------------------- the import probe cache


def test_the_probe_is_remembered_only_for_an_unchanged_app_and_only_when_clean(tmp_path, monkeypatch):
    from checks import probe_cache

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    app = tmp_path / "app"
    (app / "agent_server").mkdir(parents=True)
    (app / "agent_server" / "agent.py").write_text("x = 1\n")
    runs = []

    def probe(result):
        return lambda: runs.append(result) or result

    clean = {"error": None, "missing": [], "invoke": "a.b", "stream": "a.c", "package": "p"}
    assert probe_cache.cached_probe(app, "PROBE", ["m"], probe(clean)) == clean
    assert probe_cache.cached_probe(app, "PROBE", ["m"], probe({"error": "not run"})) == clean
    assert len(runs) == 1
    for change in (lambda: (app / "agent_server" / "agent.py").write_text("x = 2\n"),
                   lambda: (app / "uv.lock").write_text("lock"),
                   lambda: (app / ".env").write_text("DATABRICKS_CONFIG_PROFILE=other\n"),
                   lambda: monkeypatch.setenv("DATABRICKS_HOST", "http://elsewhere")):
        change()
        failed = {"error": "ImportError: x", "missing": []}
        assert probe_cache.cached_probe(app, "PROBE", ["m"], probe(failed)) == failed  # a change: run again
        assert probe_cache.cached_probe(app, "PROBE", ["m"], probe(failed)) == failed  # a failure: not kept
    assert len(runs) == 9


@pytest.mark.e2e
def test_a_remembered_probe_does_not_tell_an_identical_app_it_loads_the_first_ones_package(tmp_path, monkeypatch):
    """Two apps with the same files (the sync and async migration of a ChatAgent are identical) share one
    remembered probe; the second must not be told that `import agent_server` loads the first one's folder."""
    from checks.code_imports import import_findings

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    first = tmp_path / "first"
    (first / "agent_server").mkdir(parents=True)
    (first / "agent_server" / "__init__.py").write_text("")
    (first / "agent_server" / "agent.py").write_text(
        "from mlflow.genai.agent_server import invoke, stream\n\n"
        "@invoke()\nasync def answer(request):\n    return {}\n\n"
        "@stream()\nasync def answer_stream(request):\n    yield {}\n")
    second = tmp_path / "second"
    shutil.copytree(first, second)
    assert import_findings(first, []) == []
    assert import_findings(second, []) == []


def test_credentials_in_a_registry_uri_never_reach_a_report():
    from scripts.download import without_credentials

    assert without_credentials("http://alice:s3cret@registry.example:5000/x") == "http://registry.example:5000/x"
    assert without_credentials("sqlite:///tmp/r.db") == "sqlite:///tmp/r.db"
    assert without_credentials("databricks-uc://profile") == "databricks-uc://profile"


def test_a_token_is_never_sent_over_plain_http_to_another_machine():
    from scripts.core.errors import MigrateError
    from scripts.smoke_request import refuse_plain_http

    with pytest.raises(MigrateError) as refused:
        refuse_plain_http("http://my-app-123.aws.databricksapps.com")
    assert refused.value.code == "SMK024" and "https://" in refused.value.fix
    refuse_plain_http("https://my-app-123.aws.databricksapps.com")
    refuse_plain_http("http://127.0.0.1:8000")  # a local server: nothing leaves the machine


def test_setup_never_writes_a_readme_outside_the_app(tmp_path):
    from scripts.core.errors import MigrateError
    from scripts.setup import ensure_readme

    app = tmp_path / "work" / "app"
    app.mkdir(parents=True)
    with pytest.raises(MigrateError, match="outside the app folder"):
        ensure_readme(app, {"readme": "../../x.md"}, "app")
    assert not (tmp_path / "x.md").exists()
    assert ensure_readme(app, {"readme": "README.md"}, "app") == ("README.md", "created")
