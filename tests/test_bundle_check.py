"""The bundle check, and the app section's JSON Schema cross-checked against the official typed models.

Cross-check: `databricks.bundles.apps` (the databricks-bundles package) holds generated dataclasses for the
app section of databricks.yml. The tests compare the schema to them field by field (property names, required
fields, enum values), then feed both the same samples (hand-written and generated from the models: minimal
valid entries, each required field dropped, unknown keys, wrong enum values) and require the same verdict.
Two rules where the schema is deliberately stricter are asserted as such at the end.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import shutil
import typing
from pathlib import Path

import pytest

from checks.resources import check_resources
from scripts.core.schema_registry import validation_errors
from scripts.core.layout import MigrationLayout
from tests.steps import map_into_bundle
from tests.steps import scaffold
from tests.steps import setup

apps = pytest.importorskip("databricks.bundles.apps")

SCHEMA = json.loads((Path(__file__).parent.parent / "checks" / "schemas" / "bundle_app.schema.json").read_text())
FIXTURES = Path(__file__).parent / "fixtures" / "resources"

# Schema definition → typed model; the root of the schema is `App`.
MODELS = {name: getattr(apps, name) for name in SCHEMA["$defs"] if name != "variable"}
MODELS["<root>"] = apps.App
RESOURCE_KINDS = {field.name: field for field in dataclasses.fields(apps.AppResource)
                  if field.name not in ("name", "description")}


def definition(name: str) -> dict:
    return SCHEMA if name == "<root>" else SCHEMA["$defs"][name]


def enum_of(annotation) -> type[enum.Enum] | None:
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return annotation
    for argument in typing.get_args(annotation):
        found = enum_of(argument)
        if found:
            return found
    return None


def model_class_of(annotation) -> type | None:
    """The dataclass inside a field's annotation (VariableOr[...], lists of ...)."""
    if dataclasses.is_dataclass(annotation) and isinstance(annotation, type):
        return annotation
    for argument in typing.get_args(annotation):
        found = model_class_of(argument)
        if found and found.__module__.startswith("databricks.bundles.apps"):
            return found
    return None


def required_fields(model) -> set[str]:
    return {field.name for field in dataclasses.fields(model)
            if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING}


def schema_enum(property_schema: dict) -> list[str] | None:
    for option in property_schema.get("anyOf", [property_schema]):
        if "enum" in option:
            return option["enum"]
    return None


@pytest.mark.parametrize("name", sorted(MODELS))
def test_schema_fields_match_the_typed_model(name):
    model, schema = MODELS[name], definition(name)
    hints = typing.get_type_hints(model)
    assert set(schema["properties"]) == {field.name for field in dataclasses.fields(model)}
    assert set(schema["required"]) == required_fields(model)
    assert schema["additionalProperties"] is False
    for field in dataclasses.fields(model):
        values = enum_of(hints[field.name])
        if values is not None:
            assert sorted(schema_enum(schema["properties"][field.name])) == sorted(item.value for item in values), field.name


def models_accept(app: dict) -> bool:
    try:
        apps.App.from_dict(app)
    except (ValueError, TypeError, KeyError):
        return False
    return True


def schema_accepts(app: dict) -> bool:
    return not validation_errors(app, "bundle_app")


def minimal(model) -> dict:
    """A valid instance of a typed model with only its required fields."""
    hints = typing.get_type_hints(model)
    sample = {}
    for name in sorted(required_fields(model)):
        values = enum_of(hints[name])
        nested = model_class_of(hints[name])
        sample[name] = next(iter(values)).value if values else (minimal(nested) if nested else "x")
    return sample


def with_resource(kind: str, spec: dict) -> dict:
    return {"name": "my-agent", "resources": [{"name": "r", kind: spec}]}


def generated_samples() -> list[tuple[str, dict]]:
    samples = []
    hints = typing.get_type_hints(apps.AppResource)
    for kind in RESOURCE_KINDS:
        model = model_class_of(hints[kind])
        valid = minimal(model)
        samples.append((f"{kind}: minimal", with_resource(kind, valid)))
        samples.append((f"{kind}: unknown key", with_resource(kind, {**valid, "surprise": "x"})))
        for field in sorted(required_fields(model)):
            samples.append((f"{kind}: without {field}", with_resource(kind, {k: v for k, v in valid.items() if k != field})))
        model_hints = typing.get_type_hints(model)
        for field in dataclasses.fields(model):
            if enum_of(model_hints[field.name]):
                samples.append((f"{kind}: bad {field.name}", with_resource(kind, {**valid, field.name: "NOT_A_LEVEL"})))
                samples.append((f"{kind}: {field.name} as a variable",
                                with_resource(kind, {**valid, field.name: "${var.level}"})))
    return samples


HAND_WRITTEN = [
    ("the scaffold's app", {
        "name": "my-agent", "description": "d", "source_code_path": ".",
        "config": {"command": ["uv", "run", "start-server"],
                   "env": [{"name": "A", "value": "1"}, {"name": "B", "value_from": "experiment"}]},
        "resources": [{"name": "experiment",
                       "experiment": {"experiment_id": "${var.experiment_id}", "permission": "CAN_MANAGE"}}],
        "user_api_scopes": ["sql", "serving.serving-endpoints"]}),
    ("no name", {"description": "d"}),
    ("unknown top-level key", {"name": "a", "resource": []}),
    ("resource without a name", {"name": "a", "resources": [
        {"serving_endpoint": {"name": "e", "permission": "CAN_QUERY"}}]}),
    ("user_api_scopes as one string", {"name": "a", "user_api_scopes": "sql"}),
    ("user_api_scopes from a variable", {"name": "a", "user_api_scopes": "${var.scopes}"}),
    ("command as one string", {"name": "a", "config": {"command": "uv run start-server"}}),
    ("env entry without a name", {"name": "a", "config": {"env": [{"value": "x"}]}}),
    ("valueFrom spelled the JavaScript way", {"name": "a", "config": {"env": [{"name": "A", "valueFrom": "x"}]}}),
    ("bad compute size", {"name": "a", "compute_size": "HUGE"}),
    ("compute size", {"name": "a", "compute_size": "LARGE"}),
    ("lifecycle", {"name": "a", "lifecycle": {"started": True}}),
    ("permissions", {"name": "a", "permissions": [{"level": "CAN_USE", "group_name": "users"}]}),
    ("bad permission level", {"name": "a", "permissions": [{"level": "CAN_QUERY", "group_name": "users"}]}),
    ("git source", {"name": "a", "git_source": {"branch": "main"},
                    "git_repository": {"provider": "gitHub", "url": "https://example.com/r"}}),
    ("git repository without url", {"name": "a", "git_repository": {"provider": "gitHub"}}),
    ("telemetry", {"name": "a", "telemetry_export_destinations": [
        {"unity_catalog": {"logs_table": "c.s.l", "metrics_table": "c.s.m", "traces_table": "c.s.t"}}]}),
]


@pytest.mark.parametrize("label, app", HAND_WRITTEN + generated_samples(), ids=lambda value: value
                         if isinstance(value, str) else "")
def test_the_schema_and_the_typed_models_agree(label, app):
    assert schema_accepts(app) == models_accept(app), (label, validation_errors(app, "bundle_app"))


def test_the_samples_cover_both_verdicts():
    verdicts = [schema_accepts(app) for _, app in HAND_WRITTEN + generated_samples()]
    assert verdicts.count(True) >= 15 and verdicts.count(False) >= 30


@pytest.mark.parametrize("label, app", [
    # The models coerce scalars (`name: 5` becomes "5"); bundle YAML authors mean strings, so the schema says so.
    ("a number where a string goes", {"name": 5}),
    # The models accept a resource with no kind or several; the Apps API takes exactly one per resource.
    ("a resource with no kind", {"name": "a", "resources": [{"name": "r"}]}),
    ("a resource with two kinds", {"name": "a", "resources": [
        {"name": "r", "app": {"name": "b"}, "job": {"id": "1", "permission": "CAN_VIEW"}}]}),
])
def test_where_the_schema_is_deliberately_stricter(label, app):
    assert models_accept(app) and not schema_accepts(app)


# --- the check on a migrated app ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def migrated(tmp_path_factory):
    """An app after scaffold, setup (a real `uv lock`) and resources, built once and copied per test."""
    import os

    saved = {name: os.environ.pop(name) for name in ("DATABRICKS_HOST", "DATABRICKS_CONFIG_PROFILE")
             if name in os.environ}
    root = tmp_path_factory.mktemp("migrated")
    source = root / "migration" / "source"
    source.mkdir(parents=True)
    (root / "migration" / "reports").mkdir()
    (source / "requirements.txt").write_text("mlflow==3.17.2\ncloudpickle==3.1.3\n")
    shutil.copy(FIXTURES / "all_types.MLmodel", source / "MLmodel")
    scaffold(root, "my-agent", force=False)
    try:
        setup(root, None, None, False)
    finally:
        os.environ.update(saved)
    map_into_bundle(root, None)
    return root


@pytest.fixture
def app(migrated, tmp_path) -> Path:
    shutil.copytree(migrated, tmp_path / "work")
    return tmp_path / "work" / "my-agent"


def findings_of(app: Path):
    return check_resources(MigrationLayout.for_app(app))


def codes(app: Path) -> set[str]:
    return {finding.code for finding in findings_of(app)}


def edit(app: Path, old: str, new: str, name: str = "databricks.yml") -> None:
    text = (app / name).read_text()
    assert old in text
    (app / name).write_text(text.replace(old, new, 1))


def test_a_migrated_app_is_green(app):
    assert findings_of(app) == []


def test_a_broken_databricks_yml_is_reported_with_its_line(app):
    edit(app, "      source_code_path: .\n", "      source_code_path: .\n     stray: x\n")
    [finding] = findings_of(app)
    assert finding.code == "RES101" and finding.path.endswith("databricks.yml:18") and "line 18" in finding.message


def test_schema_violations_name_the_field(app):
    edit(app, "permission: CAN_QUERY", "permission: CAN_QUERYY")
    [finding] = [finding for finding in findings_of(app) if finding.code == "RES103"]
    assert "resources.apps.my_agent.resources" in finding.message and "CAN_QUERYY" in finding.message


def test_a_missing_resource_and_a_wider_permission_are_errors(app):
    edit(app, "        - name: sql-warehouse\n          sql_warehouse:\n            id: abc123def456\n"
              "            permission: CAN_USE\n", "")
    edit(app, "permission: CAN_QUERY", "permission: CAN_MANAGE")
    found = {(finding.code, finding.severity) for finding in findings_of(app)}
    assert ("RES104", "error") in found and ("RES105", "error") in found


def test_modify_on_a_table_is_only_a_warning(app):
    edit(app, "securable_full_name: main.agents.orders\n            securable_type: TABLE\n"
              "            permission: SELECT", "securable_full_name: main.agents.orders\n"
              "            securable_type: TABLE\n            permission: MODIFY")
    [finding] = findings_of(app)
    assert (finding.code, finding.severity) == ("RES105", "warning")


def test_a_resource_without_a_source_is_a_warning(app):
    edit(app, "      resources:\n", "      resources:\n        - name: extra\n          job:\n"
              "            id: '7'\n            permission: CAN_VIEW\n")
    [finding] = findings_of(app)
    assert (finding.code, finding.severity) == ("RES108", "warning")


def test_on_behalf_of_user_needs_its_scope(tmp_path):
    root = tmp_path
    (root / "migration" / "source").mkdir(parents=True)
    (root / "migration" / "reports").mkdir()
    shutil.copy(FIXTURES / "obo_resources.MLmodel", root / "migration" / "source" / "MLmodel")
    scaffold(root, "my-agent", force=False)
    app = root / "my-agent"
    map_into_bundle(root, None)
    edit(app, "        - dashboards.genie\n", "")
    assert "RES106" in codes(app)


def test_an_unknown_mlmodel_type_is_flagged(app):
    mlmodel = app / "migration" / "source" / "MLmodel"
    mlmodel.write_text(mlmodel.read_text().replace("    app:\n", "    quantum_computer:\n    - name: q\n    app:\n"))
    assert "RES107" in codes(app)


@pytest.mark.parametrize("old, new, code", [
    ("      name: my-agent\n", "      name: My_Agent\n", "RES109"),
    ("    mode: development\n", "    mode: development\n    resources:\n      apps:\n        my_agent:\n"
                              "          name: other-name\n", "RES109"),
    ("      source_code_path: .\n", "      source_code_path: ./src\n", "RES110"),
    ('command: ["uv", "run", "start-server"]', 'command: ["python", "app.py"]', "RES111"),
    ("            value_from: experiment\n", "            value_from: experiments\n", "RES114"),
    ("      description: Agent", "      description: Agent dapi0123456789abcdef0123456789abcdef", "RES113"),
])
def test_each_rule_of_the_check(app, old, new, code):
    edit(app, old, new)
    assert code in codes(app)


def test_the_server_script_must_exist(app):
    edit(app, 'start-server = "agent_server.start_server:main"', 'start-server = "agent_server.gone:main"',
         "pyproject.toml")
    assert "RES111" in codes(app)


@pytest.mark.parametrize("name, text, flagged", [
    ("config.yaml", "password: hunter2-correct\n", True),
    ("settings.py", 'API_KEY = "sk-proj-abcdefghijklmnopqrstuvwxyz123456"\n', True),
    ("settings.py", 'OPENAI_API_KEY = "abcdef123456"\n', True),
    ("settings.py", 'token = os.environ["DATABRICKS_TOKEN"]\nmax_tokens = 100\n', False),
    ("settings.py", 'TOKEN_HEADER = "x-forwarded-access-token"\n', False),
    ("notes.md", "Set `DATABRICKS_TOKEN=<your token>` in .env.\n", False),
    (".env", "DATABRICKS_TOKEN=dapi0123456789abcdef0123456789abcdef\n", False),  # git-ignored
])
def test_secrets_in_committed_files(app, name, text, flagged):
    (app / name).write_text(text)
    assert ("RES113" in codes(app)) is flagged


def test_one_secret_is_reported_once_whichever_check_scans_it(app):
    """COD019 (code check) and RES113 (this check) share one scanner; each reports its own part of the app."""
    from checks import secrets
    from checks.code import secret_findings as code_secrets

    (app / "agent_server" / "keys.py").write_text('DATABRICKS_TOKEN = "dapi0123456789abcdef0123456789abcdef"\n')
    (app / "app.yaml").write_text("env:\n  - name: DB_URL\n    value: postgresql://agent:s3cr3tpw@db.example.com/x\n")
    assert {hit.relative for hit in secrets.scan(app)} == {"agent_server/keys.py", "app.yaml"}
    assert [finding.path for finding in code_secrets(app)] == [f"{app.name}/agent_server/keys.py:1"]
    bundle = [finding for finding in check_resources(MigrationLayout.for_app(app)) if finding.code == "RES113"]
    assert [finding.path for finding in bundle] == [f"{app.name}/app.yaml:3"]
    assert "a password in a URL" in bundle[0].message and "s3cr3tpw" not in bundle[0].message


@pytest.mark.parametrize("line, flagged", [
    ("url = 'postgresql://agent:s3cr3tpw@db.example.com/x'", True),
    ("url = 'postgresql://agent:${DB_PASSWORD}@db.example.com/x'", False),
    ("url = 'https://github.com/org/repo'", False),
])
def test_a_password_in_a_url_is_a_secret(line, flagged):
    from checks.secrets import line_hit

    assert (line_hit(line, Path("settings.py")) is not None) is flagged


def test_a_literal_secret_env_value_in_the_bundle(app):
    edit(app, "          - name: MLFLOW_TRACKING_URI\n", "          - name: SERVICE_TOKEN\n"
              "            value: abcd1234efgh\n          - name: MLFLOW_TRACKING_URI\n")
    assert "RES113" in codes(app)


def test_dependency_disagreement_is_reported_once(app):
    (app / "requirements.txt").write_text("pandas\n")
    assert "RES112" not in codes(app)  # the setup check says it (SET101) since setup ran
    (app / "migration" / "reports" / "setup.json").unlink()
    assert "RES112" in codes(app)
