"""The stand-in's MLflow model registry over HTTP: a model version's files, served as an MLflow tracking server
with `--serve-artifacts` serves them, so `mlflow.artifacts.download_artifacts("models:/NAME/VERSION")` with
`--registry-uri http://127.0.0.1:PORT` runs MLflow's own HTTP client code unchanged.

A test publishes a folder as a model version (`serve_model`), and may slow the file downloads (a delay per
64 KiB chunk) to stand for a slow network: that is how an interrupted or timed-out download is reproduced.
Routes MLflow calls: `registered-models/get`, `model-versions/get-download-uri`, and the artifact proxy's
list and download routes.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

ARTIFACTS_ROUTE = "/api/2.0/mlflow-artifacts/artifacts"
CHUNK = 64 * 1024


def not_found(message: str) -> JSONResponse:
    return JSONResponse({"error_code": "RESOURCE_DOES_NOT_EXIST", "message": message}, status_code=404)


def add_registry_routes(app: FastAPI) -> None:
    models: dict[tuple[str, str], Path] = {}  # (name, version) -> folder of the model's files
    settings = {"chunk_delay_ms": 0.0}

    def folder_of(path: str) -> tuple[Path, Path] | None:
        """`models/NAME/VERSION/rest` -> (the model's folder, the file or folder `rest` names in it)."""
        parts = path.strip("/").split("/")
        if len(parts) < 3 or parts[0] != "models" or (parts[1], parts[2]) not in models:
            return None
        root = models[(parts[1], parts[2])]
        target = root.joinpath(*parts[3:]).resolve()
        return (root, target) if target == root or root in target.parents else None

    @app.get("/api/2.0/mlflow/registered-models/get")
    async def registered_model(name: str):
        versions = [version for (model, version) in models if model == name]
        if not versions:
            return not_found(f"Registered Model with name={name} not found")
        return {"registered_model": {"name": name, "latest_versions": [{"name": name, "version": v}
                                                                        for v in versions]}}

    @app.get("/api/2.0/mlflow/model-versions/get-download-uri")
    async def download_uri(name: str, version: str, request: Request):
        if (name, version) not in models:
            return not_found(f"Model Version (name={name}, version={version}) not found")
        base = str(request.base_url).rstrip("/")
        return {"artifact_uri": f"{base}{ARTIFACTS_ROUTE}/models/{name}/{version}"}

    @app.get(ARTIFACTS_ROUTE)
    async def list_artifacts(path: str = ""):
        found = folder_of(path)
        if found is None or not found[1].exists():
            return not_found(f"No artifacts at {path}")
        _, target = found
        entries = sorted(target.iterdir()) if target.is_dir() else [target]
        return {"files": [{"path": entry.name, "is_dir": entry.is_dir(),
                           **({} if entry.is_dir() else {"file_size": entry.stat().st_size})} for entry in entries]}

    @app.get(ARTIFACTS_ROUTE + "/{path:path}")
    async def download_artifact(path: str):
        found = folder_of(path)
        if found is None or not found[1].is_file():
            return not_found(f"No artifact at {path}")
        delay = settings["chunk_delay_ms"] / 1000

        async def chunks():
            with found[1].open("rb") as stream:
                while chunk := stream.read(CHUNK):
                    if delay:
                        await asyncio.sleep(delay)
                    yield chunk

        return StreamingResponse(chunks(), media_type="application/octet-stream")

    @app.put("/_standin/models/{name}/{version}")
    async def put_model(name: str, version: str, request: Request):
        body = await request.json()
        models[(name, version)] = Path(body["folder"]).resolve()
        settings["chunk_delay_ms"] = float(body.get("chunk_delay_ms", 0.0))
        return {}


def serve_model(workspace, name: str, version: str, folder: Path, chunk_delay_ms: float = 0.0) -> str:
    """Publish `folder` as model version NAME/VERSION on a running stand-in; return its registry URI.

    `chunk_delay_ms` slows every file download (all models) by that much per 64 KiB. MLflow's client sends
    `MLFLOW_TRACKING_TOKEN` as its bearer token: set it to the workspace token (`registry_env`)."""
    workspace._put(f"models/{name}/{version}", {"folder": str(folder), "chunk_delay_ms": chunk_delay_ms})
    return workspace.url


def registry_env(workspace) -> dict[str, str]:
    """The variables MLflow's HTTP client needs to reach the stand-in's registry."""
    return {"MLFLOW_TRACKING_TOKEN": workspace.token}
