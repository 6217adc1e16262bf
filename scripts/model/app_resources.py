"""What each MLmodel resource becomes in the app: the mapping table, shared by the resources step and its check.

The step writes these app resources into databricks.yml; the bundle check verifies the file against the same
table, so the two never disagree about what least privilege is. The MLmodel's resources are read by
`scripts.model.mlmodel` (the one walk of a resource block); here they are taken the way a bundle can use
them: Databricks resources of api_version "1", each with a name, once each.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from scripts.model.mlmodel import resource_blocks, resource_items, user_api_scopes

# The app's own MLflow experiment resource (MLFLOW_EXPERIMENT_ID reads it with `value_from`).
EXPERIMENT_RESOURCE = "experiment"
# App resource names: lowercase letters, digits and inner hyphens, like the default resource keys the
# Apps UI gives (`serving-endpoint`, `sql-warehouse`); short enough to read in the UI.
RESOURCE_NAME_PATTERN = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
RESOURCE_NAME_MAX = 48


@dataclass(frozen=True)
class Mapping:
    """How one MLflow resource type becomes an app resource."""

    kind: str  # the app resource key in databricks.yml
    label: str  # prefix of the resource's readable name
    permission: str  # least privilege that lets the agent use it
    user_scope: str | None  # candidate user API scope when the resource is used on behalf of the user


# ARCHITECTURE §4 (the seed's least-privilege table) plus `app` and `uc_model_service`, which it leaves out.
# User scopes are candidates only: the scope vocabulary is not stable (ARCHITECTURE §6).
MAPPINGS: dict[str, Mapping] = {
    "serving_endpoint": Mapping("serving_endpoint", "endpoint", "CAN_QUERY", "serving.serving-endpoints"),
    "vector_search_index": Mapping("uc_securable", "index", "SELECT", "vectorsearch.vector-search-indexes"),
    "function": Mapping("uc_securable", "function", "EXECUTE", "sql"),
    "table": Mapping("uc_securable", "table", "SELECT", "sql"),
    "uc_connection": Mapping("uc_securable", "connection", "USE_CONNECTION", "catalog.connections"),
    "sql_warehouse": Mapping("sql_warehouse", "sql-warehouse", "CAN_USE", "sql"),
    "genie_space": Mapping("genie_space", "genie-space", "CAN_RUN", "dashboards.genie"),
    "app": Mapping("app", "app", "CAN_USE", None),
    "uc_model_service": Mapping("uc_securable", "model-service", "EXECUTE", "serving.serving-endpoints"),
    # Lakebase has no user scope: the database connection stays on the app's service principal.
    "lakebase": Mapping("database", "database", "CAN_CONNECT_AND_CREATE", None),
}
# A vector index is a TABLE securable: `VECTOR_SEARCH_INDEX` is rejected (ARCHITECTURE §8, dao-ai #77).
SECURABLE_TYPES = {"vector_search_index": "TABLE", "function": "FUNCTION", "table": "TABLE",
                   "uc_connection": "CONNECTION", "uc_model_service": "MODEL_SERVICE"}
# A provisioned Lakebase instance's default database (what MLflow's DatabricksLakebase connects to).
LAKEBASE_DEFAULT_DATABASE = "databricks_postgres"
AUTOSCALING_LAKEBASE = re.compile(r"^projects/[^/]+(/branches/[^/]+)?(/databases/[^/]+)?$")
# What makes two app resources the same grant, whatever their names and permissions.
IDENTITY_KEYS = {"serving_endpoint": ("name",), "uc_securable": ("securable_type", "securable_full_name"),
                 "sql_warehouse": ("id",), "genie_space": ("space_id",), "app": ("name",),
                 "database": ("instance_name", "database_name"), "postgres": ("branch", "database"),
                 "experiment": ("experiment_id",), "secret": ("scope", "key"), "job": ("id",)}


@dataclass(frozen=True)
class SourceResource:
    """One resource the MLmodel declares."""

    type: str
    name: str
    on_behalf_of_user: bool
    origin: str  # where in MLmodel: "resources" or "auth_policy"


@dataclass(frozen=True)
class Unreadable:
    """A part of MLmodel's resources no bundle entry can come from (another target, another api_version)."""

    where: str
    reason: str


def source_resources(mlmodel: dict) -> tuple[list[SourceResource], list[Unreadable], list[str]]:
    """The MLmodel's Databricks resources (the same type and name twice count once), what cannot be mapped,
    and the user auth policy's scopes."""
    found: list[SourceResource] = []
    unreadable: list[Unreadable] = []
    seen: set[tuple[str, str, bool]] = set()
    for origin, block in resource_blocks(mlmodel):
        api_version = str(block.get("api_version", "1"))
        for target in block:
            if target != "api_version" and (target != "databricks" or api_version != "1"):
                unreadable.append(Unreadable(f"{origin}.{target}", f"target {target!r} with api_version "
                                                                    f"{api_version!r}"))
        if api_version != "1":
            continue
        for target, resource_type, item in resource_items(block):
            if target != "databricks":
                continue  # reported above
            name = item.get("name") if isinstance(item, dict) else None
            if not name:
                unreadable.append(Unreadable(f"{origin}.databricks.{resource_type}", "an entry with no name"))
                continue
            key = (resource_type, str(name), bool(item.get("on_behalf_of_user", False)))
            if key not in seen:
                seen.add(key)
                found.append(SourceResource(*key, origin))
    return found, unreadable, user_api_scopes(mlmodel)


def app_resource_spec(source: SourceResource) -> tuple[str, dict] | None:
    """(kind, fields) of the app resource for `source`; None for a type we do not know."""
    mapping = MAPPINGS.get(source.type)
    if mapping is None:
        return None
    permission = mapping.permission
    if source.type in SECURABLE_TYPES:
        return "uc_securable", {"securable_full_name": source.name, "securable_type": SECURABLE_TYPES[source.type],
                                "permission": permission}
    if source.type == "sql_warehouse":
        return "sql_warehouse", {"id": source.name, "permission": permission}
    if source.type == "genie_space":
        # MLflow records only the space id; the bundle also wants the space's name, which we do not know.
        return "genie_space", {"name": source.name, "space_id": source.name, "permission": permission}
    if source.type == "lakebase":
        return lakebase_spec(source.name, permission)
    return mapping.kind, {"name": source.name, "permission": permission}  # serving_endpoint, app


def lakebase_spec(name: str, permission: str) -> tuple[str, dict]:
    """A provisioned instance is a `database`; an autoscaling path is a `postgres` resource (ARCHITECTURE §6)."""
    if AUTOSCALING_LAKEBASE.match(name):
        spec = {"branch": re.sub(r"/databases/[^/]+$", "", name), "permission": permission}
        if "/databases/" in name:
            spec["database"] = name
        return "postgres", spec
    return "database", {"instance_name": name, "database_name": LAKEBASE_DEFAULT_DATABASE, "permission": permission}


def identity(kind: str, spec: dict) -> tuple | None:
    """What makes two app resources the same grant, whatever their names and permissions."""
    keys = IDENTITY_KEYS.get(kind)
    if keys is None or not isinstance(spec, dict):
        return None
    return (kind, *(str(spec.get(key, "")) for key in keys))


def resource_kind(entry: dict) -> str | None:
    """The kind of an app resource entry: its one key besides `name` and `description`."""
    kinds = [key for key in entry if key not in ("name", "description")]
    return kinds[0] if len(kinds) == 1 else None
