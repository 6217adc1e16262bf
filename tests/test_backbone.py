"""The shared parts every step stands on: the CLI, the step registry, schemas and report writing."""

from __future__ import annotations

import json

import pytest

from scripts.core.findings import Finding
from scripts.core.schema_registry import schema_names, validation_errors
from scripts import cli
from scripts.core.layout import MigrationLayout
from scripts.core.reports import InvalidReport, StepReport, read_report, write_report
from scripts.steps import COMMANDS, STEPS


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    shown = capsys.readouterr().out
    for command in COMMANDS:
        assert command.name in shown


@pytest.mark.parametrize("step", [step.name for step in STEPS])
def test_every_step_has_a_schema_and_a_check(step):
    assert step in schema_names()
    command = next(command for command in STEPS if command.name == step)
    assert callable(command.load_check())


def test_every_schema_is_valid_2020_12():
    from jsonschema import Draft202012Validator

    from scripts.core.schema_registry import _schemas

    for name, schema in _schemas().items():
        Draft202012Validator.check_schema(schema)
        assert schema["$id"] == f"urn:agent-migrate:{name}"


def test_report_round_trip(tmp_path):
    layout = MigrationLayout.for_workdir(tmp_path)
    report = StepReport(step="report", inputs={"endpoint": "x"})
    report.findings.append(Finding("AB001", "warning", "somewhere", "something odd", "do this"))
    path = write_report(layout, report)
    assert path == tmp_path / "migration" / "reports" / "report.json"
    written = read_report(layout, "report")
    assert written["status"] == "warning"
    assert written["findings"][0]["code"] == "AB001"
    assert validation_errors(written, "report") == []
    assert [p.name for p in path.parent.iterdir()] == ["report.json"]  # no temporary file left


def test_a_report_that_breaks_its_schema_is_not_written(tmp_path):
    layout = MigrationLayout.for_workdir(tmp_path)
    report = StepReport(step="report", inputs={})
    report.findings.append(Finding("lowercase", "error", "", "bad code", ""))
    with pytest.raises(InvalidReport, match="does not match"):
        write_report(layout, report)
    assert not layout.report_path("report").exists()


def test_check_with_no_reports_is_an_error_with_a_fix(tmp_path, capsys):
    assert cli.main(["check", "--workdir", str(tmp_path)]) == 1
    message = capsys.readouterr().err
    assert "nothing to check" in message and "fix:" in message
    assert "Traceback" not in message


def test_check_refuses_an_unknown_step(tmp_path, capsys):
    assert cli.main(["check", "deploy-to-mars", "--workdir", str(tmp_path)]) == 1
    assert "unknown step" in capsys.readouterr().err


def test_check_reports_a_step_asked_for_that_never_ran(tmp_path, capsys):
    assert cli.main(["check", "download", "--workdir", str(tmp_path), "--json"]) == 1
    result = json.loads(capsys.readouterr().out)
    assert result["status"] == "fail"
    assert [finding["code"] for finding in result["findings"]] == ["CHK004"]


def test_check_flags_a_report_that_is_not_json(tmp_path, capsys):
    layout = MigrationLayout.for_workdir(tmp_path)
    layout.reports.mkdir(parents=True)
    layout.report_path("download").write_text("{not json")
    assert cli.main(["check", "download", "--workdir", str(tmp_path), "--json"]) == 1
    codes = [finding["code"] for finding in json.loads(capsys.readouterr().out)["findings"]]
    assert "CHK002" in codes


def test_discover_tells_an_app_folder_from_a_workdir(tmp_path):
    app = tmp_path / "my-app"
    (app / "agent_server").mkdir(parents=True)
    assert MigrationLayout.discover(app).workdir == tmp_path
    assert MigrationLayout.discover(app).original == tmp_path / "original_mlflow_model"
    assert MigrationLayout.discover(tmp_path).root == tmp_path


def test_check_from_the_workdir_finds_the_one_app_the_reports_moved_to(tmp_path, capsys):
    app = MigrationLayout.for_app(tmp_path / "my-app")
    (app.root / "agent_server").mkdir(parents=True)
    app.reports.mkdir(parents=True)
    app.report_path("download").write_text("{not json")
    assert cli.main(["check", "download", "--workdir", str(tmp_path), "--json"]) == 1
    result = json.loads(capsys.readouterr().out)
    assert result["root"] == str(app.root)
    assert [finding["code"] for finding in result["findings"]] == ["CHK002"]


def test_check_from_a_workdir_with_two_apps_asks_which(tmp_path, capsys):
    for name in ("one-app", "two-app"):
        (tmp_path / name / "agent_server").mkdir(parents=True)
    assert cli.main(["check", "--workdir", str(tmp_path)]) == 1
    message = capsys.readouterr().err
    assert "one-app, two-app" in message and "--app" in message
