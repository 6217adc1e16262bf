"""Which registered model version to download: the endpoint's served entity with all traffic, or a model URI.

The endpoint is read with databricks-sdk within the network timeout (`model_fetch.TIMEOUT_VARIABLE`), and every
way it can go wrong (no credentials, no answer, not found, forbidden, a traffic split, no registered agent) is a
`MigrateError` that says what to do.
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass

from scripts import model_fetch
from scripts.core.errors import MigrateError

MODEL_URI = re.compile(r"^models:/(?P<name>[^/@]+)/(?P<version>[0-9]+)$")


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


def login_fix(profile: str | None) -> str:
    return f"run `databricks auth login --profile {profile or 'DEFAULT'}`, then pass --profile {profile or 'DEFAULT'}"


def workspace_client(profile: str | None, timeout: float):
    """A client whose every request gives up after `timeout` s, retries included (the SDK's own default
    retries a host that does not answer for 5 minutes, twice: once for its host metadata, once per call)."""
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.config import Config

    try:
        return WorkspaceClient(config=Config(profile=profile, http_timeout_seconds=max(1, timeout / 3),
                                             retry_timeout_seconds=max(1, int(timeout / 3))))
    except ValueError as error:  # the SDK's way of saying no credentials could be found or they conflict
        raise MigrateError(f"cannot connect to a Databricks workspace: {error}", login_fix(profile)) from error


def unreachable(host: str | None, profile: str | None, timeout: float, cause: object) -> MigrateError:
    where = f"the Databricks workspace at {host}" if host else \
        f"the Databricks workspace of profile {profile or 'DEFAULT'}"
    return MigrateError(
        f"{where} did not answer within {timeout:.0f} s: {cause}",
        f"check that {host or 'the host'} is your workspace URL (`databricks auth profiles`; the host of profile "
        f"{profile or 'DEFAULT'} in ~/.databrickscfg, or DATABRICKS_HOST), that this machine reaches it (VPN, "
        f"proxy), then run again; {model_fetch.TIMEOUT_VARIABLE} sets the wait")


def fetch_endpoint(endpoint: str, profile: str | None):
    """The endpoint's description, within the network timeout: the SDK's calls run in a worker thread that
    is abandoned (a daemon) when the time is up, so no wait of the SDK can outlast it."""
    import databricks.sdk  # noqa: F401  imported here, not in the worker: importing is no network wait

    timeout = model_fetch.network_timeout()
    outcome: dict = {}

    def read() -> None:
        try:
            client = workspace_client(profile, timeout)
            outcome["host"] = client.config.host
            outcome["endpoint"] = read_endpoint(client, endpoint, profile)
        except BaseException as error:  # handed to the waiting thread, which raises it
            outcome["error"] = error

    worker = threading.Thread(target=read, name="read-endpoint", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise unreachable(outcome.get("host") or os.environ.get("DATABRICKS_HOST"), profile, timeout,
                          "no answer")
    error = outcome.get("error")
    if isinstance(error, (TimeoutError, ConnectionError)) or type(error).__module__.startswith("requests"):
        raise unreachable(outcome.get("host"), profile, timeout, error) from error
    if error is not None:
        raise error
    return outcome["endpoint"]


def read_endpoint(client, endpoint: str, profile: str | None):
    from databricks.sdk.errors import NotFound, PermissionDenied, Unauthenticated

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
