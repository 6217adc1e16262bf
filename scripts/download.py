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
import shutil
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from scripts.core.findings import Finding
from scripts import model_fetch
from scripts.download_resolve import ModelVersion, choose_entity, fetch_endpoint, parse_model_uri
from scripts.core import atomic
from scripts.core.errors import MigrateError
from scripts.core.layout import ORIGINAL_DIR, MigrationLayout
from scripts.core.reports import StepReport
from scripts.model.mlmodel import MLMODEL, PYFUNC, UnreadableMLmodel, read_mlmodel
from scripts.source_facts import UnreadableManifest, hash_tree, manifest_digest, read_manifest, write_source_facts

STEP = "download"


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


# ---------------------------------------------------------------------------------------------------- download


def without_credentials(uri: str) -> str:
    """`uri` as a report may keep it: `scheme://user:password@host` loses its `user:password@`."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(uri)
    if not parts.netloc or "@" not in parts.netloc:
        return uri
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def mlflow_uris(profile: str | None, registry_uri: str | None, tracking_uri: str | None) -> tuple[str, str]:
    suffix = f"://{profile}" if profile else ""
    return registry_uri or f"databricks-uc{suffix}", tracking_uri or f"databricks{suffix}"


def fetch_model(model: ModelVersion, registry_uri: str, tracking_uri: str, target: Path) -> None:
    """Download the model version's artifacts into `target`, an empty staging folder."""
    model_fetch.fetch_in_child(model.uri, registry_uri, tracking_uri, target)
    if not (target / "MLmodel").is_file():
        raise MigrateError(f"{model.uri} downloaded without an MLmodel file: it is not an MLflow model",
                           "pass the model version your endpoint serves")


def existing_download(layout: MigrationLayout) -> tuple[dict | None, bool, str | None]:
    """The manifest of the download in place (if any), whether the original still matches it, and why the
    manifest could not be read when it could not (a broken manifest proves nothing: only --force replaces)."""
    try:
        manifest = read_manifest(layout)
    except UnreadableManifest as error:
        return None, False, str(error)
    if manifest is None or not layout.original.is_dir():
        return manifest, False, None
    return manifest, manifest_digest(hash_tree(layout.original)) == manifest["digest"], None


def refusal(layout: MigrationLayout, model: ModelVersion, manifest: dict | None, unreadable: str | None) -> str:
    """Why the original in place is not replaced without --force."""
    shown = layout.relative(layout.original)
    if unreadable:
        return f"{shown}/ exists, and {unreadable}"
    if manifest is None:
        return f"{shown}/ exists and was not written by `migrate download`"
    if manifest["model"]["uri"] == model.uri:
        return f"{shown}/ holds {model.uri} but its files were changed"
    return f"{shown}/ holds {manifest['model']['uri']}, not {model.uri}"


def place_download(layout: MigrationLayout, model: ModelVersion, registry_uri: str, tracking_uri: str,
                   force: bool) -> str:
    """Put the model at `original_mlflow_model/`; return what happened: downloaded, unchanged or replaced."""
    manifest, intact, unreadable = existing_download(layout)
    same_model = manifest is not None and manifest["model"]["uri"] == model.uri
    if layout.original.exists() and not force:
        if same_model and intact:
            return "unchanged"
        raise MigrateError(refusal(layout, model, manifest, unreadable),
                           "pass --force to replace it (the folder is replaced whole), or run in another --workdir")
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
    findings = []
    try:
        flavors = read_mlmodel(original / MLMODEL).get("flavors") or {}
    except UnreadableMLmodel as error:
        where = f"{ORIGINAL_DIR}/{MLMODEL}" + (f":{error.line}" if error.line else "")
        findings.append(Finding("DLD010", "error", where, f"MLmodel is {error.problem}",
                                "download it again with `migrate download --force`; if it stays broken, the model "
                                "version itself is: log it again"))
        flavors = None
    if flavors is not None and PYFUNC not in flavors:
        findings.append(Finding("DLD001", "error", f"{ORIGINAL_DIR}/{MLMODEL}",
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


@dataclass(frozen=True)
class DownloadRequest:
    """What to download and from where, as the command line says it (one of endpoint and model_uri)."""

    endpoint: str | None = None
    model_uri: str | None = None
    profile: str | None = None
    entity: str | None = None
    version: str | None = None
    registry_uri: str | None = None
    tracking_uri: str | None = None
    force: bool = False

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> DownloadRequest:
        return cls(**{field.name: getattr(args, field.name) for field in fields(cls)})


def download(workdir: Path, request: DownloadRequest) -> StepReport:
    layout = MigrationLayout.for_workdir(workdir)
    registry_uri, tracking_uri = mlflow_uris(request.profile, request.registry_uri, request.tracking_uri)
    if request.endpoint:
        model = choose_entity(fetch_endpoint(request.endpoint, request.profile), request.entity, request.version)
    else:
        model = parse_model_uri(request.model_uri or "")
    inputs = {**asdict(request), "registry_uri": without_credentials(registry_uri),
              "tracking_uri": without_credentials(tracking_uri)}
    report = StepReport(step=STEP, inputs=inputs, layout=layout)

    action = place_download(layout, model, registry_uri, tracking_uri, request.force)
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
    return report


def run(args: argparse.Namespace) -> StepReport:
    report = download(args.workdir, DownloadRequest.from_args(args))
    payload = report.payload
    where = f" (endpoint {payload['model']['endpoint']}, served entity {payload['model']['served_entity']})" \
        if payload["model"]["endpoint"] else ""
    print(f"{payload['action']}: {payload['model']['uri']}{where}")
    print(f"  {report.outputs['original']}/  {payload['files']} files, {payload['bytes']} bytes")
    print(f"  {report.outputs['source']}/  MLmodel, input example, requirements and the manifest of hashes")
    return report
