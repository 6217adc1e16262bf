"""`migrate download`: resolve the endpoint to its model version, download it, verify it, report.

    migrate download --endpoint my-agent [--profile P] [--entity NAME | --version V]
    migrate download --model-uri models:/main.agents.my_agent/3

The endpoint is read with databricks-sdk; the served entity that takes 100% of traffic is the one to
migrate. The model is downloaded with `mlflow.artifacts.download_artifacts` into a staging folder beside
`original_mlflow_model/` and renamed into place only when complete. A second run for the same model is a
no-op; a different model already there is refused unless --force.
"""

from __future__ import annotations

import argparse
import re
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from checks.findings import Finding
from scripts import atomic
from scripts.errors import MigrateError
from scripts.layout import MigrationLayout
from scripts.reports import StepReport, write_report
from scripts.source_facts import hash_tree, manifest_digest, read_manifest, write_source_facts

STEP = "download"
MODEL_URI = re.compile(r"^models:/(?P<name>[^/@]+)/(?P<version>[0-9]+)$")


def configure(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--endpoint", help="the Model Serving endpoint whose agent to migrate")
    source.add_argument("--model-uri", help="models:/<name>/<version>: skip the endpoint lookup")
    parser.add_argument("--profile", help="Databricks CLI profile (~/.databrickscfg) for the workspace")
    parser.add_argument("--entity", help="with a traffic split: the served entity (by served name or model name)")
    parser.add_argument("--version", help="with a traffic split: the model version to migrate")
    parser.add_argument("--registry-uri", help="MLflow registry (default: databricks-uc, with --profile "
                                               "databricks-uc://PROFILE)")
    parser.add_argument("--tracking-uri", help="MLflow tracking server (default: databricks, with --profile "
                                               "databricks://PROFILE)")
    parser.add_argument("--force", action="store_true",
                        help="download again, replacing original_mlflow_model/ even when it holds another model "
                             "or was changed")


@dataclass(frozen=True)
class ModelVersion:
    """The registered model version to migrate, and where it was found."""

    name: str
    version: str
    endpoint: str | None = None
    served_entity: str | None = None
    traffic_percentage: int | None = None

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


# ---------------------------------------------------------------------------------------------------- resolve


def login_fix(profile: str | None) -> str:
    return f"run `databricks auth login --profile {profile or 'DEFAULT'}`, then pass --profile {profile or 'DEFAULT'}"


def workspace_client(profile: str | None):
    # The one builder (bounded waits, one message naming the host): scripts/workspace.py.
    from scripts.workspace import workspace_client as bounded_client

    return bounded_client(profile)


def fetch_endpoint(endpoint: str, profile: str | None):
    from databricks.sdk.errors import NotFound, PermissionDenied, Unauthenticated

    client = workspace_client(profile)
    try:
        return client.serving_endpoints.get(endpoint)
    except NotFound as error:
        raise MigrateError(f"serving endpoint {endpoint!r} not found in {client.config.host}",
                           f"check the name with `databricks serving-endpoints list --profile "
                           f"{profile or 'DEFAULT'}`") from error
    except Unauthenticated as error:
        raise MigrateError(f"the workspace {client.config.host} did not accept your credentials: {error}",
                           login_fix(profile)) from error
    except PermissionDenied as error:
        raise MigrateError(f"you may not read serving endpoint {endpoint!r}: {error}",
                           f"ask for CAN_VIEW on the endpoint, or {login_fix(profile)} as a user who has it"
                           ) from error


def traffic_by_entity(endpoint) -> dict[str, int]:
    routes = endpoint.config.traffic_config.routes if endpoint.config and endpoint.config.traffic_config else []
    return {(route.served_entity_name or route.served_model_name): route.traffic_percentage or 0
            for route in routes or []}


def choose_entity(endpoint, entity: str | None, version: str | None) -> ModelVersion:
    """The served entity to migrate: the one with 100% of traffic, or the one --entity/--version names."""
    served = list(endpoint.config.served_entities or []) if endpoint.config else []
    traffic = traffic_by_entity(endpoint)
    registered = [item for item in served if item.entity_name and item.entity_version]
    if not registered:
        kinds = sorted({"foundation model" if item.foundation_model else
                        "external model" if item.external_model else "unknown entity" for item in served})
        raise MigrateError(
            f"endpoint {endpoint.name!r} serves a {' and '.join(kinds) or 'nothing'}, not a registered agent: "
            "there is no agent code to migrate",
            "an app can call this endpoint directly as a serving_endpoint resource; pass the endpoint that "
            "serves your agent (its served entity is a Unity Catalog model)")
    if entity or version:
        matches = [item for item in registered
                   if (entity is None or entity in (item.name, item.entity_name))
                   and (version is None or str(item.entity_version) == str(version))]
    elif len(registered) == 1:
        matches = registered
    else:
        matches = [item for item in registered if traffic.get(item.name) == 100]
    if len(matches) != 1:
        listing = "; ".join(f"{item.name} = {item.entity_name} version {item.entity_version} "
                            f"({traffic.get(item.name, 0)}% of traffic)" for item in registered)
        problem = ("no served entity matches --entity/--version" if entity or version
                   else "traffic is split between several served entities")
        raise MigrateError(f"endpoint {endpoint.name!r}: {problem}: {listing}",
                           "say which one to migrate with --entity SERVED_NAME or --version VERSION")
    chosen = matches[0]
    return ModelVersion(name=chosen.entity_name, version=str(chosen.entity_version), endpoint=endpoint.name,
                        served_entity=chosen.name, traffic_percentage=traffic.get(chosen.name))


def parse_model_uri(uri: str) -> ModelVersion:
    match = MODEL_URI.match(uri)
    if not match:
        raise MigrateError(f"{uri!r} is not a model version URI",
                           "pass --model-uri models:/<catalog.schema.model>/<version>, e.g. "
                           "models:/main.agents.my_agent/3")
    return ModelVersion(name=match["name"], version=match["version"])


# ---------------------------------------------------------------------------------------------------- download


def mlflow_uris(profile: str | None, registry_uri: str | None, tracking_uri: str | None) -> tuple[str, str]:
    suffix = f"://{profile}" if profile else ""
    return registry_uri or f"databricks-uc{suffix}", tracking_uri or f"databricks{suffix}"


def fetch_model(model: ModelVersion, registry_uri: str, tracking_uri: str, target: Path) -> None:
    """Download the model version's artifacts into `target`, an empty staging folder."""
    import mlflow
    from mlflow.exceptions import MlflowException

    mlflow.set_registry_uri(registry_uri)
    try:
        mlflow.artifacts.download_artifacts(artifact_uri=model.uri, dst_path=str(target), tracking_uri=tracking_uri)
    except MlflowException as error:
        raise MigrateError(f"could not download {model.uri} from registry {registry_uri}: {error.message}",
                           "check the model name and version (`databricks registered-models get` or the "
                           "Catalog Explorer), and --registry-uri/--tracking-uri") from error
    if not (target / "MLmodel").is_file():
        raise MigrateError(f"{model.uri} downloaded without an MLmodel file: it is not an MLflow model",
                           "pass the model version your endpoint serves")


def existing_download(layout: MigrationLayout) -> tuple[dict | None, bool]:
    """The manifest of the download in place (if any) and whether the original still matches it."""
    manifest = read_manifest(layout)
    if manifest is None or not layout.original.is_dir():
        return manifest, False
    return manifest, manifest_digest(hash_tree(layout.original)) == manifest["digest"]


def place_download(layout: MigrationLayout, model: ModelVersion, registry_uri: str, tracking_uri: str,
                   force: bool) -> str:
    """Put the model at `original_mlflow_model/`; return what happened: downloaded, unchanged or replaced."""
    manifest, intact = existing_download(layout)
    same_model = manifest is not None and manifest["model"]["uri"] == model.uri
    if layout.original.exists():
        if same_model and intact and not force:
            return "unchanged"
        if not force:
            if same_model:
                problem = f"{layout.relative(layout.original)}/ holds {model.uri} but its files were changed"
            elif manifest is None:
                problem = f"{layout.relative(layout.original)}/ exists and was not written by `migrate download`"
            else:
                problem = f"{layout.relative(layout.original)}/ holds {manifest['model']['uri']}, not {model.uri}"
            raise MigrateError(problem, "pass --force to replace it (the folder is replaced whole), or run in "
                                        "another --workdir")
    staged = atomic.staging_dir(layout.original)
    try:
        fetch_model(model, registry_uri, tracking_uri, staged)
        existed = layout.original.exists()
        atomic.replace_dir(staged, layout.original)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    return "replaced" if existed else "downloaded"


# ---------------------------------------------------------------------------------------------------- verify


def verify(original: Path) -> list[Finding]:
    """What the downloaded model lacks that later steps need."""
    import yaml

    findings = []
    mlmodel = yaml.safe_load((original / "MLmodel").read_text(encoding="utf-8")) or {}
    if "python_function" not in (mlmodel.get("flavors") or {}):
        findings.append(Finding("DLD001", "error", "original_mlflow_model/MLmodel",
                                "the model has no python_function flavor: it is not a pyfunc agent",
                                "migrate an endpoint whose model was logged with mlflow.pyfunc.log_model"))
    if not (original / "input_example.json").is_file():
        findings.append(Finding("DLD002", "warning", "original_mlflow_model/input_example.json",
                                "the model has no input example: the smoke test will send a minimal request",
                                "write an input_example.json (a ResponsesAgentRequest) and pass it to "
                                "`migrate smoke --input FILE`"))
    if not (original / "requirements.txt").is_file():
        findings.append(Finding("DLD003", "warning", "original_mlflow_model/requirements.txt",
                                "the model has no requirements.txt: the app's dependencies must be listed by hand",
                                "add the agent's packages to the app's pyproject.toml after `migrate setup`"))
    return findings


# ---------------------------------------------------------------------------------------------------- step


def download(workdir: Path, args: argparse.Namespace) -> StepReport:
    layout = MigrationLayout.for_workdir(workdir)
    registry_uri, tracking_uri = mlflow_uris(args.profile, args.registry_uri, args.tracking_uri)
    if args.endpoint:
        model = choose_entity(fetch_endpoint(args.endpoint, args.profile), args.entity, args.version)
    else:
        model = parse_model_uri(args.model_uri)
    report = StepReport(step=STEP, inputs={
        "endpoint": args.endpoint, "model_uri": args.model_uri, "profile": args.profile, "entity": args.entity,
        "version": args.version, "registry_uri": registry_uri, "tracking_uri": tracking_uri, "force": args.force})

    action = place_download(layout, model, registry_uri, tracking_uri, args.force)
    manifest = write_source_facts(layout, layout.original, {"uri": model.uri, **asdict(model)})
    report.findings.extend(verify(layout.original))
    report.outputs = {"original": layout.relative(layout.original), "source": layout.relative(layout.source)}
    report.payload = {
        "model": {"uri": model.uri, **asdict(model)},
        "action": action,
        "files": len(manifest["files"]),
        "bytes": sum(entry["bytes"] for entry in manifest["files"].values()),
        "digest": manifest["digest"],
    }
    write_report(layout, report)
    return report


def run(args: argparse.Namespace) -> int:
    report = download(args.workdir, args)
    payload = report.payload
    where = f" (endpoint {payload['model']['endpoint']}, served entity {payload['model']['served_entity']})" \
        if payload["model"]["endpoint"] else ""
    print(f"{payload['action']}: {payload['model']['uri']}{where}")
    print(f"  {report.outputs['original']}/  {payload['files']} files, {payload['bytes']} bytes")
    print(f"  {report.outputs['source']}/  MLmodel, input example, requirements and the manifest of hashes")
    for finding in report.findings:
        print(f"{finding.severity}: [{finding.code}] {finding.path}: {finding.message}\n  fix: {finding.fix}")
    return 1 if report.status == "error" else 0
