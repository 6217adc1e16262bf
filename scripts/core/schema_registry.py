"""Load the JSON Schemas shipped in `checks/schemas/` and validate documents against them.

Schemas reference each other by `$id` (`urn:agent-migrate:<name>`), resolved through one registry so a
step schema can `$ref` the common report envelope.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

SCHEMA_PACKAGE = "checks.schemas"


def schema_id(name: str) -> str:
    return f"urn:agent-migrate:{name}"


@cache
def _schemas() -> dict[str, dict]:
    found = {}
    for entry in resources.files(SCHEMA_PACKAGE).iterdir():
        if entry.name.endswith(".schema.json"):
            found[entry.name.removesuffix(".schema.json")] = json.loads(entry.read_text())
    return found


@cache
def _registry() -> Registry:
    return Registry().with_resources(
        (schema["$id"], Resource.from_contents(schema)) for schema in _schemas().values()
    )


def schema_names() -> list[str]:
    return sorted(_schemas())


@cache
def validator(name: str) -> Draft202012Validator:
    schemas = _schemas()
    if name not in schemas:
        raise KeyError(f"no schema named {name!r} in checks/schemas (have: {', '.join(sorted(schemas))})")
    return Draft202012Validator(schemas[name], registry=_registry())


def validation_errors(document: object, name: str) -> list[str]:
    """Every way `document` breaks schema `name`, as `json/path: message` lines (empty when valid)."""
    errors = sorted(validator(name).iter_errors(document), key=lambda error: list(error.absolute_path))
    return [f"{error.json_path}: {error.message}" for error in errors]
