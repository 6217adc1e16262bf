"""A local stand-in for a Databricks workspace: its REST API subset and its LLM endpoints.

    with standin.running() as workspace:
        workspace.add_endpoint(standin.endpoint_json("my-agent", "main.agents.my_agent", "3"))
        subprocess.run([...], env=workspace.environ())

The server runs as its own process (`python -m standin`), started and stopped by `scripts.processes` (its
own process group, stopped when the block ends, also on errors and Ctrl-C). Nothing in production imports this package: it
serves the offline demo, the tests and the benchmarks.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import secrets
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import httpx

from scripts import processes

START_TIMEOUT_SECONDS = 30
# Variables that would make databricks-sdk pick another workspace or a second auth method.
WORKSPACE_VARIABLES = ("DATABRICKS_HOST", "DATABRICKS_TOKEN", "DATABRICKS_CONFIG_PROFILE", "DATABRICKS_CLIENT_ID",
                       "DATABRICKS_CLIENT_SECRET", "DATABRICKS_AUTH_TYPE", "DATABRICKS_CONFIG_FILE",
                       "DATABRICKS_ACCOUNT_ID", "DATABRICKS_USERNAME", "DATABRICKS_PASSWORD")


class StandinError(RuntimeError):
    """The stand-in did not start or refused a harness call."""


@dataclass(frozen=True)
class Workspace:
    """A running stand-in: where it is and how to talk to it."""

    url: str
    token: str

    def env(self) -> dict[str, str]:
        """The variables that point databricks-sdk, MLflow and LLM clients at this stand-in."""
        return {"DATABRICKS_HOST": self.url, "DATABRICKS_TOKEN": self.token, "DATABRICKS_AUTH_TYPE": "pat"}

    def environ(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """A full environment for a subprocess: `base` (default os.environ) without any other workspace."""
        return processes.child_environment(base=base, without=WORKSPACE_VARIABLES, overrides=self.env())

    def _put(self, path: str, body: dict) -> None:
        response = httpx.put(f"{self.url}/_standin/{path}", json=body,
                             headers={"Authorization": f"Bearer {self.token}"}, timeout=10)
        if response.status_code != 200:
            raise StandinError(f"stand-in refused PUT {path}: {response.status_code} {response.text}")

    def add_endpoint(self, endpoint: dict, forbidden: bool = False) -> None:
        """Serve `endpoint` (the JSON of serving-endpoints GET); `forbidden` makes reading it a 403."""
        self._put(f"endpoints/{endpoint['name']}", {"endpoint": endpoint, "forbidden": forbidden})

    def add_app(self, name: str, url: str | None = None, state: str = "RUNNING") -> None:
        self._put(f"apps/{name}", app_json(name, url or f"{self.url}/apps/{name}", state))

    def add_payload_table(self, full_name: str, rows: list[dict]) -> None:
        """Serve `rows` (dicts of inference-table columns) as the payload table `full_name` (standin/inference_tables.py)."""
        self._put(f"tables/{full_name}", {"rows": rows})

    def set_warehouse(self, warehouse_id: str, state: str) -> None:
        """`state` DELETED makes statements on `warehouse_id` fail as on a deleted warehouse; anything else undoes it."""
        self._put(f"warehouses/{warehouse_id}", {"state": state})

    def set_latency(self, latency_ms: float) -> None:
        self._put("latency", {"latency_ms": latency_ms})

    def principal_token(self, principal: str) -> str:
        """A token the stand-in takes as `principal` (a user, or an app's service principal): see identity.py."""
        return f"{self.token}.{principal}"

    def calls(self, since: int = 0) -> dict:
        """{"calls": [{seq, kind, resource, principal}], "next": seq}: who made each downstream call."""
        response = httpx.get(f"{self.url}/_standin/calls", params={"since": since},
                             headers={"Authorization": f"Bearer {self.token}"}, timeout=10)
        return response.json()

    def stats(self) -> dict:
        response = httpx.get(f"{self.url}/_standin/stats", headers={"Authorization": f"Bearer {self.token}"})
        return response.json()


def endpoint_json(name: str, model_name: str, version: str, *, split: list[tuple[str, str, int]] | None = None,
                  task: str = "agent/v1/responses", ai_gateway: dict | None = None) -> dict:
    """A serving endpoint as `GET /api/2.0/serving-endpoints/{name}` returns it.

    One served entity takes 100% of traffic unless `split` lists (model_name, version, percent) entries.
    `ai_gateway` is the endpoint's AI Gateway section (`inference_tables.inference_table_config(...)`).
    """
    entries = split or [(model_name, version, 100)]
    served = []
    routes = []
    for entity_name, entity_version, percent in entries:
        served_name = f"{entity_name.split('.')[-1]}-{entity_version}"
        served.append({"name": served_name, "entity_name": entity_name, "entity_version": str(entity_version),
                       "workload_size": "Small", "scale_to_zero_enabled": True, "state": {"deployment": "DEPLOYMENT_READY"}})
        routes.append({"served_model_name": served_name, "served_entity_name": served_name,
                       "traffic_percentage": percent})
    return {
        "name": name,
        "id": hashlib.sha256(name.encode()).hexdigest()[:32],
        "task": task,
        "state": {"ready": "READY", "config_update": "NOT_UPDATING"},
        "config": {"served_entities": served, "served_models": [], "traffic_config": {"routes": routes}},
        "creator": "demo.user@example.com",
        **({"ai_gateway": ai_gateway} if ai_gateway else {}),
    }


def foundation_endpoint_json(name: str) -> dict:
    """An endpoint that serves a foundation model, not a registered agent: nothing to migrate."""
    return {
        "name": name,
        "task": "llm/v1/chat",
        "state": {"ready": "READY"},
        "config": {"served_entities": [{"name": name, "foundation_model": {"name": name, "display_name": name}}],
                   "traffic_config": {"routes": [{"served_model_name": name, "traffic_percentage": 100}]}},
    }


def external_endpoint_json(name: str) -> dict:
    return {
        "name": name,
        "task": "llm/v1/chat",
        "state": {"ready": "READY"},
        "config": {"served_entities": [{"name": name, "external_model": {"name": "gpt-4o", "provider": "openai",
                                                                         "task": "llm/v1/chat"}}],
                   "traffic_config": {"routes": [{"served_model_name": name, "traffic_percentage": 100}]}},
    }


def app_json(name: str, url: str, state: str = "RUNNING") -> dict:
    return {"name": name, "url": url, "app_status": {"state": state},
            "compute_status": {"state": "ACTIVE"}, "service_principal_client_id": "00000000-0000-0000-0000-000000000001"}


def _read_ready_line(process: subprocess.Popen, log) -> dict:
    """The server's first stdout line, within the start timeout."""
    result: dict = {}

    def read() -> None:
        line = process.stdout.readline()
        if line:
            result["line"] = line

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(START_TIMEOUT_SECONDS)
    if "line" not in result:
        log.seek(0)
        raise StandinError(f"the stand-in did not start within {START_TIMEOUT_SECONDS}s; its log:\n{log.read()}")
    return json.loads(result["line"])


@contextlib.contextmanager
def running(latency_ms: float = 0.0, port: int = 0, token: str | None = None) -> Iterator[Workspace]:
    """Start a stand-in for the length of the block: on `port` (0: a free one) with `token` (None: a new one)."""
    token = token or "standin-" + secrets.token_hex(8)
    # The log goes to a file, not a pipe nobody reads: a full pipe would stall the server.
    with tempfile.TemporaryFile(mode="w+") as log:
        argv = [sys.executable, "-m", "standin", "--port", str(port), "--token", token, "--latency-ms", str(latency_ms)]
        with processes.running(argv, stdout=subprocess.PIPE, stderr=log) as process:
            ready = _read_ready_line(process, log)
            yield Workspace(url=ready["url"], token=token)
