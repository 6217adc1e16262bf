"""User API scopes: Serving's auth-policy names mapped to Apps names from the one data file; unknown names are
errors listing the valid ones, in the resources step itself."""

from __future__ import annotations

from scripts.analyze import analyze
from scripts.core.reports import write_report

import shutil
from pathlib import Path

from scripts.user_scopes import scope_table, to_apps_scopes, valid_names

FIXTURES = Path(__file__).parent / "fixtures" / "agents"


def test_every_name_says_where_it_comes_from_and_serving_names_map_to_apps_names():
    table = scope_table()
    assert all(source for source in table["apps"].values())
    for name, entry in table["serving"].items():
        assert entry["source"] and set(entry["apps"]) <= set(table["apps"]), name
    assert not set(table["serving"]) & set(table["apps"])


def test_serving_names_are_mapped_and_unknown_names_are_errors_listing_the_valid_ones():
    scopes, findings = to_apps_scopes(["model-serving", "sql", "unity-catalog", "jobs.jobs", "sql"], "app")
    assert scopes == ["serving.serving-endpoints", "sql", "catalog.catalogs:read", "catalog.schemas:read",
                      "catalog.tables:read"]
    [error] = [finding for finding in findings if finding.severity == "error"]
    assert error.code == "RES030" and "'jobs.jobs'" in error.message
    assert all(name in error.message for name in valid_names())


def test_the_resources_step_writes_apps_names_for_a_serving_auth_policy(tmp_path):
    from tests.steps import map_into_bundle
    from tests.steps import scaffold

    workdir = tmp_path / "work"
    shutil.copytree(FIXTURES / "obo_tools_stateless", workdir / "original_mlflow_model")
    source = workdir / "migration" / "source"
    source.mkdir(parents=True)
    shutil.copy(FIXTURES / "obo_tools_stateless" / "MLmodel", source / "MLmodel")
    scaffold(workdir, "obo-app", force=False)
    report = map_into_bundle(workdir, None)
    assert report.payload["user_api_scopes"] == ["serving.serving-endpoints", "sql", "dashboards.genie"]
    text = (workdir / "obo-app" / "databricks.yml").read_text()
    assert "model-serving" not in text and "serving.serving-endpoints" in text


def test_resources_does_not_take_a_docstring_for_a_use_of_the_credentials(tmp_path):
    """obo_tools' docstring names ModelServingUserCredentials(); after `migrate code` rewrote the call, the
    resources step must not report RES012 (it matched the text before)."""
    from tests.steps import migrate_code
    from tests.steps import map_into_bundle
    from tests.steps import scaffold

    workdir = tmp_path / "work"
    shutil.copytree(FIXTURES / "obo_tools", workdir / "original_mlflow_model")
    source = workdir / "migration" / "source"
    source.mkdir(parents=True)
    shutil.copy(FIXTURES / "obo_tools" / "MLmodel", source / "MLmodel")
    write_report(*analyze(workdir))
    scaffold(workdir, "obo-app", force=False)
    migrate_code(workdir, None, "sync", force=False)
    report = map_into_bundle(workdir, None)
    assert "RES012" not in {finding.code for finding in report.findings}
    assert report.payload["user_api_scopes"] == ["serving.serving-endpoints", "sql", "dashboards.genie"]
