"""Names taken from the model that still hold a template placeholder: `mcp-telco-outage-info-{env}`, `{{CATALOG}}.x`.

A project that deploys one agent to several environments often writes its resource names and config with
placeholders that its own deploy script fills in. When the logged model kept them unfilled, the app gets the
placeholder as a literal name: a resource that does not exist, a permission granted on nothing.

Only name-like strings are read (no whitespace): a prompt template's `{question}` is text, not a name.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

PLACEHOLDER = re.compile(r"\{\{\s*[A-Za-z_][\w.]*\s*\}\}|\$\{[A-Za-z_][\w.]*\}|\{[A-Za-z_]\w*\}|<[A-Z][A-Z0-9_]*>")
NAME_LIKE = re.compile(r"^[^\s]+$")
# Databricks bundle substitutions are filled in by `databricks bundle deploy`: not placeholders left over.
BUNDLE_SUBSTITUTION = re.compile(r"^\$\{(var|bundle|workspace|resources)\.")


@dataclass(frozen=True)
class PlaceholderName:
    where: str  # `resources.databricks.serving_endpoint`, `model_config.llm_endpoint`, a file path
    value: str
    placeholders: tuple[str, ...]


def placeholders_in(value: object) -> tuple[str, ...]:
    """The placeholders in a name-like string, else ()."""
    if not isinstance(value, str) or not NAME_LIKE.match(value):
        return ()
    return tuple(match.group(0) for match in PLACEHOLDER.finditer(value)
                 if not BUNDLE_SUBSTITUTION.match(match.group(0)))


def _walk(value: object, where: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _walk(inner, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list):
        for number, inner in enumerate(value):
            yield from _walk(inner, f"{where}[{number}]")
    elif isinstance(value, str):
        yield where, value


def placeholder_names(value: object, where: str = "") -> list[PlaceholderName]:
    """Every name-like string under `value` (a parsed YAML/JSON document) that holds a placeholder."""
    found = []
    for path, text in _walk(value, where):
        marks = placeholders_in(text)
        if marks:
            found.append(PlaceholderName(path, text, marks))
    return found


def mlmodel_placeholders(mlmodel: dict) -> list[PlaceholderName]:
    """Placeholders in MLmodel's resources and logged model config (the names the app is given)."""
    found = placeholder_names(mlmodel.get("resources") or {}, "resources")
    config = ((mlmodel.get("flavors") or {}).get("python_function") or {}).get("config")
    return found + placeholder_names(config or {}, "model_config")
