"""`migrate resources`: every MLflow resource type, user authorization, idempotence, comments, bad input.

The MLmodel files in tests/fixtures/resources/ were written by MLflow 3.17 (`log_model(resources=...)` and
`log_model(auth_policy=...)`), with local paths shortened.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from scripts.core.errors import MigrateError
from tests.steps import map_into_bundle
from tests.steps import scaffold

FIXTURES = Path(__file__).parent / "fixtures" / "resources"


def make_app(root: Path, mlmodel: str | Path = "all_types.MLmodel") -> Path:
    source = root / "migration" / "source"
    source.mkdir(parents=True)
    (root / "migration" / "reports").mkdir()
    if isinstance(mlmodel, Path) or mlmodel.endswith(".MLmodel"):
        shutil.copy(FIXTURES / mlmodel, source / "MLmodel")
    else:
        (source / "MLmodel").write_text(mlmodel)
    scaffold(root, "my-agent", force=False)
    return root / "my-agent"


def app_section(app: Path) -> dict:
    return yaml.safe_load((app / "databricks.yml").read_text())["resources"]["apps"]["my_agent"]


def resources_by_name(app: Path) -> dict[str, dict]:
    return {entry["name"]: entry for entry in app_section(app)["resources"]}


@pytest.mark.parametrize("mlflow_type, name, kind, spec", [
    ("serving_endpoint", "endpoint-databricks-claude-sonnet-4", "serving_endpoint",
     {"name": "databricks-claude-sonnet-4", "permission": "CAN_QUERY"}),
    ("vector_search_index", "index-docs-index", "uc_securable",
     {"securable_full_name": "main.agents.docs_index", "securable_type": "TABLE", "permission": "SELECT"}),
    ("function", "function-lookup-order", "uc_securable",
     {"securable_full_name": "main.agents.lookup_order", "securable_type": "FUNCTION", "permission": "EXECUTE"}),
    ("table", "table-orders", "uc_securable",
     {"securable_full_name": "main.agents.orders", "securable_type": "TABLE", "permission": "SELECT"}),
    ("uc_connection", "connection-github-conn", "uc_securable",
     {"securable_full_name": "github_conn", "securable_type": "CONNECTION", "permission": "USE_CONNECTION"}),
    ("sql_warehouse", "sql-warehouse", "sql_warehouse", {"id": "abc123def456", "permission": "CAN_USE"}),
    ("genie_space", "genie-space", "genie_space",
     {"name": "01ef0123456789abcdef", "space_id": "01ef0123456789abcdef", "permission": "CAN_RUN"}),
    ("app", "app-billing-app", "app", {"name": "billing-app", "permission": "CAN_USE"}),
    ("lakebase", "database-agent-memory", "database",
     {"instance_name": "agent-memory", "database_name": "databricks_postgres", "permission": "CAN_CONNECT_AND_CREATE"}),
    ("uc_model_service", "model-service-claude-sonnet", "uc_securable",
     {"securable_full_name": "system.ai.claude_sonnet", "securable_type": "MODEL_SERVICE", "permission": "EXECUTE"}),
])
def test_every_mlflow_resource_type_maps_with_least_privilege(tmp_path, mlflow_type, name, kind, spec):
    app = make_app(tmp_path)
    report = map_into_bundle(tmp_path, None)
    assert resources_by_name(app)[name] == {"name": name, kind: spec}
    [mapped] = [entry for entry in report.payload["mappings"] if entry["source"]["type"] == mlflow_type]
    assert mapped["status"] == "added" and mapped["resource_name"] == name


def test_all_ten_types_and_the_notes_that_go_with_them(tmp_path):
    app = make_app(tmp_path)
    report = map_into_bundle(tmp_path, None)
    assert len(report.payload["mappings"]) == 10
    assert len(app_section(app)["resources"]) == 11  # and the experiment
    codes = sorted(finding.code for finding in report.findings)
    assert codes == ["RES002", "RES003", "RES007"]  # MODEL_SERVICE needs a recent CLI; database name; genie name
    assert "recent Databricks CLI" in next(f for f in report.findings if f.code == "RES002").message


def test_a_second_run_changes_nothing(tmp_path):
    app = make_app(tmp_path)
    map_into_bundle(tmp_path, None)
    first = (app / "databricks.yml").read_bytes()
    again = map_into_bundle(tmp_path, None)
    assert (app / "databricks.yml").read_bytes() == first
    assert again.payload["databricks_yml"] == "unchanged"
    assert {entry["status"] for entry in again.payload["mappings"]} == {"present"}


def test_comments_order_and_hand_added_resources_are_kept(tmp_path):
    app = make_app(tmp_path, "obo_resources.MLmodel")
    text = (app / "databricks.yml").read_text()
    text = text.replace("      resources:\n",
                        "      # my note about resources\n      resources:\n"
                        "        - name: my-secret  # added by hand\n"
                        "          secret:\n            scope: agent\n            key: api-key\n"
                        "            permission: READ\n"
                        "        - name: endpoint-databricks-claude-sonnet-4\n"
                        "          job:\n            id: '123'\n            permission: CAN_VIEW\n")
    (app / "databricks.yml").write_text(text)
    map_into_bundle(tmp_path, None)
    after = (app / "databricks.yml").read_text()
    assert "# my note about resources" in after and "# added by hand" in after
    assert after.startswith(text.split("resources:\n  apps:")[0])  # the header and variables untouched
    names = [entry["name"] for entry in app_section(app)["resources"]]
    assert names[:3] == ["my-secret", "endpoint-databricks-claude-sonnet-4", "experiment"]
    assert "endpoint-databricks-claude-sonnet-4-2" in names  # a hand-added name is never reused
    assert after.rstrip().endswith("default: true") and "\n\ntargets:" in after


def test_on_behalf_of_user_resources_become_user_scopes(tmp_path):
    app = make_app(tmp_path, "obo_resources.MLmodel")
    report = map_into_bundle(tmp_path, None)
    section = app_section(app)
    assert section["user_api_scopes"] == ["dashboards.genie", "vectorsearch.vector-search-indexes"]
    moved = {(entry["type"], entry["name"]) for entry in report.payload["user_auth"]}
    assert moved == {("genie_space", "01ef0123456789abcdef"), ("vector_search_index", "main.agents.docs_index")}
    kinds = {next(key for key in entry if key != "name") for entry in section["resources"]}
    assert kinds == {"experiment", "serving_endpoint", "database"}  # Lakebase stays on the service principal
    codes = {finding.code for finding in report.findings}
    assert {"RES005", "RES006"} <= codes
    assert "effective_user_api_scopes" in next(f for f in report.findings if f.code == "RES005").fix
    assert (app / "agent_server" / "user_auth.py").is_file()
    assert report.payload["user_auth_helper"]["path"] == "agent_server/user_auth.py"


TWO_TABLES_AS_THE_USER = """\
resources:
  api_version: '1'
  databricks:
    table:
    - name: main.a.orders
      on_behalf_of_user: true
    - name: main.a.customers
      on_behalf_of_user: true
    sql_warehouse:
    - name: abc123
      on_behalf_of_user: true
"""


def test_a_scope_two_resources_need_is_listed_once(tmp_path):
    """Before, each on-behalf-of-user resource appended its scope: `sql` three times in user_api_scopes."""
    app = make_app(tmp_path, TWO_TABLES_AS_THE_USER)
    report = map_into_bundle(tmp_path, None)
    assert app_section(app)["user_api_scopes"] == ["sql"]
    assert report.payload["user_api_scopes"] == report.payload["user_api_scopes_added"] == ["sql"]


def test_auth_policy_scopes_and_system_resources(tmp_path):
    app = make_app(tmp_path, "auth_policy.MLmodel")
    report = map_into_bundle(tmp_path, None)
    section = app_section(app)
    assert section["user_api_scopes"] == ["serving.serving-endpoints", "vectorsearch.vector-search-indexes"]
    assert {entry["source"]["origin"] for entry in report.payload["mappings"]} == {"auth_policy"}
    assert set(resources_by_name(app)) == {"experiment", "endpoint-databricks-claude-sonnet-4", "database-agent-memory"}


def test_user_scopes_the_user_added_are_kept(tmp_path):
    app = make_app(tmp_path, "auth_policy.MLmodel")
    text = (app / "databricks.yml").read_text()
    (app / "databricks.yml").write_text(text.replace("      source_code_path: .\n",
                                                     "      source_code_path: .\n      user_api_scopes: [sql]\n"))
    map_into_bundle(tmp_path, None)
    assert app_section(app)["user_api_scopes"] == ["sql", "serving.serving-endpoints",
                                                   "vectorsearch.vector-search-indexes"]


UNKNOWN_AND_LAKEBASE = """\
resources:
  api_version: '1'
  databricks:
    quantum_computer:
    - name: qpu-1
    lakebase:
    - name: projects/agent/branches/main/databases/memory
    table:
    - name: main.a.orders
    - name: main.b.orders
"""


def test_an_unknown_type_is_kept_as_unmapped_and_autoscaling_lakebase_is_postgres(tmp_path):
    app = make_app(tmp_path, UNKNOWN_AND_LAKEBASE)
    report = map_into_bundle(tmp_path, None)
    [unknown] = [entry for entry in report.payload["mappings"] if entry["status"] == "unmapped"]
    assert unknown["source"] == {"type": "quantum_computer", "name": "qpu-1", "on_behalf_of_user": False,
                                 "origin": "resources"}
    assert "quantum_computer" in next(f for f in report.findings if f.code == "RES001").message
    by_name = resources_by_name(app)
    assert by_name["postgres-agent"]["postgres"] == {
        "branch": "projects/agent/branches/main", "database": "projects/agent/branches/main/databases/memory",
        "permission": "CAN_CONNECT_AND_CREATE"}
    assert "RES004" in {finding.code for finding in report.findings}
    assert {"table-orders", "table-orders-2"} <= set(by_name)


def test_a_malformed_databricks_yml_is_one_error_with_its_line_and_nothing_is_written(tmp_path):
    app = make_app(tmp_path)
    broken = (app / "databricks.yml").read_text().replace("      source_code_path: .\n",
                                                           "      source_code_path: .\n     stray: x\n")
    (app / "databricks.yml").write_text(broken)
    line = broken.splitlines().index("     stray: x") + 1
    with pytest.raises(MigrateError) as error:
        map_into_bundle(tmp_path, None)
    assert f"line {line}:" in error.value.message and "nothing was changed" in error.value.fix
    assert (app / "databricks.yml").read_text() == broken
    assert not (app / "migration" / "reports" / "resources.json").exists()


def test_a_missing_mlmodel_copy_says_how_to_carry_it_in(tmp_path):
    app = make_app(tmp_path)
    (app / "migration" / "source" / "MLmodel").unlink()
    with pytest.raises(MigrateError, match="MLmodel") as error:
        map_into_bundle(tmp_path, None)
    assert "migrate scaffold" in error.value.fix


@pytest.mark.parametrize("broken, line, words", [
    ("resources: {databricks: [unclosed\n", 1, "not valid YAML"),
    ("- resources\n", 1, "not an MLmodel mapping"),
    ("artifact_path: agent\nflavors:\n  - python_function\n", 2, "`flavors` is a list"),
])
def test_an_unreadable_mlmodel_copy_is_an_error_with_its_line_and_the_check_says_it_too(broken, line, words,
                                                                                       tmp_path):
    """One reader for the step and the check: the same file and line from both (before, a scalar document was
    read as no resources at all, and the check said nothing)."""
    from checks.resources import check_resources
    from scripts.core.layout import MigrationLayout

    app = make_app(tmp_path)
    (app / "migration" / "source" / "MLmodel").write_text(broken)
    with pytest.raises(MigrateError) as error:
        map_into_bundle(tmp_path, None)
    assert error.value.code == "RES020" and f"migration/source/MLmodel:{line}: {words}" in error.value.message
    [finding] = [finding for finding in check_resources(MigrationLayout.for_app(app)) if finding.code == "RES104"]
    assert finding.path == f"my-agent/migration/source/MLmodel:{line}" and words in finding.message


def test_model_serving_user_credentials_in_the_agent_code_is_an_error(tmp_path):
    app = make_app(tmp_path, "obo_resources.MLmodel")
    (app / "agent_server" / "tools.py").write_text(
        "from databricks_ai_bridge import ModelServingUserCredentials\n"
        "client = WorkspaceClient(credentials_strategy=ModelServingUserCredentials())\n")
    report = map_into_bundle(tmp_path, None)
    [finding] = [finding for finding in report.findings if finding.code == "RES012"]
    assert finding.path == "my-agent/agent_server/tools.py" and "user_workspace_client" in finding.fix
