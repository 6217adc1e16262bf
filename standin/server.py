"""The workspace stand-in's HTTP routes: the subset of the Databricks REST API and LLM endpoints we call.

Reached exactly as a workspace is (`DATABRICKS_HOST=http://127.0.0.1:PORT`, `DATABRICKS_TOKEN`), so
databricks-sdk, MLflow and the agents' LLM clients run unchanged against it. Errors use the workspace's
wire format, `{"error_code": ..., "message": ...}` with the matching HTTP status, because databricks-sdk
turns exactly that into its typed exceptions (NotFound, Unauthenticated, PermissionDenied).

Routes under `/_standin/` are the test harness's own (register an endpoint, an app, a latency); they take the
same token.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass, field

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from standin import llm
from standin.registry import add_registry_routes
from standin.data_apis import add_data_routes
from standin.identity import CallRecord, principal_of

CURRENT_USER = {
    "id": "1000000000000001",
    "userName": "demo.user@example.com",
    "displayName": "Demo User",
    "active": True,
    "emails": [{"value": "demo.user@example.com", "primary": True, "type": "work"}],
}


@dataclass
class WorkspaceState:
    token: str
    latency_ms: float = 0.0
    endpoints: dict[str, dict] = field(default_factory=dict)
    forbidden_endpoints: set[str] = field(default_factory=set)
    apps: dict[str, dict] = field(default_factory=dict)
    experiments: dict[str, dict] = field(default_factory=dict)  # by name
    llm_requests: int = 0
    calls: CallRecord = field(default_factory=CallRecord)  # which principal made each downstream call


def error(status: int, error_code: str, message: str) -> JSONResponse:
    return JSONResponse({"error_code": error_code, "message": message}, status_code=status)


class TokenCheck:
    """Every route but discovery takes the workspace token, or one derived from it (standin/identity.py).

    A plain ASGI middleware, not `@app.middleware("http")`: Starlette's BaseHTTPMiddleware runs each request
    through an extra task and memory streams, and the stand-in answers every LLM call an agent makes.
    """

    def __init__(self, app, token: str):
        self.app = app
        self.token = token

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"].startswith("/.well-known/"):  # discovery is public
            return await self.app(scope, receive, send)
        header = next((value for name, value in scope["headers"] if name == b"authorization"), b"")
        principal = principal_of(header, self.token)
        if principal is not None:
            # Routes read it from request.state to record who made the call.
            scope.setdefault("state", {})["principal"] = principal
            return await self.app(scope, receive, send)
        message = ("No access token was given (Authorization header missing)." if not header
                   else "Invalid access token.")
        await error(401, "UNAUTHENTICATED", message)(scope, receive, send)


def build_app(state: WorkspaceState) -> FastAPI:
    app = FastAPI(title="agent-migrate workspace stand-in")

    app.add_middleware(TokenCheck, token=state.token)
    add_registry_routes(app)  # MLflow's registry over HTTP (standin/registry.py)
    add_workspace_routes(app, state)
    add_llm_routes(app, state)
    add_harness_routes(app, state)
    add_data_routes(app, state)  # SQL statements, Genie, vector search, UC functions (standin/data_apis.py)
    return app


def add_workspace_routes(app: FastAPI, state: WorkspaceState) -> None:
    """Serving endpoints' metadata, the caller's identity, experiments and apps."""

    @app.get("/.well-known/databricks-config")
    async def host_metadata(request: Request):
        # databricks-sdk reads this when it builds a config; without it, it logs a warning on every client.
        base = str(request.base_url).rstrip("/")
        return {"oidc_endpoint": f"{base}/oidc", "workspace_id": "1000000000000001", "cloud": "aws"}

    @app.get("/api/2.0/serving-endpoints")
    async def list_endpoints():
        return {"endpoints": list(state.endpoints.values())}

    @app.get("/api/2.0/serving-endpoints/{name}")
    async def get_endpoint(name: str):
        if name in state.forbidden_endpoints:
            return error(403, "PERMISSION_DENIED",
                         f"User does not have permission to view serving endpoint '{name}'.")
        if name not in state.endpoints:
            return error(404, "RESOURCE_DOES_NOT_EXIST", f"Endpoint with name '{name}' does not exist.")
        return state.endpoints[name]

    @app.get("/api/2.0/preview/scim/v2/Me")
    async def me(request: Request):
        who = request.scope.get("state", {}).get("principal", "workspace")
        state.calls.add("current_user", None, who)
        if who == "workspace":
            return CURRENT_USER
        return {**CURRENT_USER, "id": str(int(hashlib.sha256(who.encode()).hexdigest()[:12], 16)), "userName": f"{who}@example.com",
                "displayName": who, "emails": [{"value": f"{who}@example.com", "primary": True, "type": "work"}]}

    @app.get("/api/2.0/mlflow/experiments/get-by-name")
    async def experiment_by_name(experiment_name: str):
        if experiment_name not in state.experiments:
            return error(404, "RESOURCE_DOES_NOT_EXIST", f"Node named '{experiment_name}' does not exist.")
        return {"experiment": state.experiments[experiment_name]}

    @app.get("/api/2.0/mlflow/experiments/get")
    async def experiment_by_id(experiment_id: str):
        for experiment in state.experiments.values():
            if experiment["experiment_id"] == experiment_id:
                return {"experiment": experiment}
        return error(404, "RESOURCE_DOES_NOT_EXIST", f"No Experiment with id={experiment_id} exists")

    @app.post("/api/2.0/mlflow/experiments/create")
    async def create_experiment(request: Request):
        body = await request.json()
        name = body.get("name", "")
        if not name.startswith("/"):
            return error(400, "INVALID_PARAMETER_VALUE", f"Got an invalid experiment name '{name}': "
                         "it must be an absolute workspace path.")
        if name in state.experiments:
            return error(400, "RESOURCE_ALREADY_EXISTS", f"Node named '{name}' already exists.")
        experiment_id = str(4000000000000000 + len(state.experiments) + 1)
        state.experiments[name] = {"experiment_id": experiment_id, "name": name, "lifecycle_stage": "active"}
        return {"experiment_id": experiment_id}

    @app.get("/api/2.0/apps/{name}")
    async def get_app(name: str):
        if name not in state.apps:
            return error(404, "RESOURCE_DOES_NOT_EXIST", f"App with name {name} does not exist or is deleted.")
        return state.apps[name]


def add_llm_routes(app: FastAPI, state: WorkspaceState) -> None:
    """The LLM endpoints' chat completions, answered by standin/llm.py after the configured latency."""

    async def chat(body: dict, model: str, request: Request):
        if not body.get("messages"):
            return error(400, "INVALID_PARAMETER_VALUE", "The request has no messages.")
        state.llm_requests += 1
        state.calls.add("llm", model, request.scope.get("state", {}).get("principal", "workspace"))
        if state.latency_ms:
            await asyncio.sleep(state.latency_ms / 1000)
        if not body.get("stream"):
            # Serialized here, not by FastAPI's jsonable_encoder, which walks the answer object by object.
            return Response(json.dumps(llm.completion(body, model)), media_type="application/json")

        async def events():
            for chunk in llm.completion_chunks(body, model):
                yield f"data: {json.dumps(chunk)}\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    @app.post("/serving-endpoints/chat/completions")
    async def chat_completions(request: Request):
        body = await request.json()
        return await chat(body, body.get("model", ""), request)

    @app.post("/serving-endpoints/{name}/invocations")
    async def invocations(name: str, request: Request):
        return await chat(await request.json(), name, request)


def add_harness_routes(app: FastAPI, state: WorkspaceState) -> None:
    """The test harness's own routes under /_standin/: register endpoints and apps, set the latency, read
    the calls made and the counts."""

    @app.put("/_standin/endpoints/{name}")
    async def put_endpoint(name: str, request: Request):
        body = await request.json()
        state.endpoints[name] = body["endpoint"]
        if body.get("forbidden"):
            state.forbidden_endpoints.add(name)
        else:
            state.forbidden_endpoints.discard(name)
        return {}

    @app.put("/_standin/apps/{name}")
    async def put_app(name: str, request: Request):
        state.apps[name] = await request.json()
        return {}

    @app.put("/_standin/latency")
    async def put_latency(request: Request):
        state.latency_ms = float((await request.json())["latency_ms"])
        return {}

    @app.get("/_standin/calls")
    async def calls(since: int = 0):
        """The downstream calls from sequence number `since` on, and the next number (standin/identity.py)."""
        return state.calls.since(since)

    @app.get("/_standin/stats")
    async def stats():
        return {"llm_requests": state.llm_requests, "experiments": list(state.experiments)}
