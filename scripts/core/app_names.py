"""The rules of a Databricks App's name and its key in databricks.yml: the scaffold applies them, the bundle
check verifies them, from this one place."""

from __future__ import annotations

import re

# Databricks Apps: "only lowercase alphanumeric characters and hyphens" (Databricks CLI, `apps create`),
# at most 30 characters (Apps UI); a leading or trailing hyphen is refused too.
APP_NAME_PATTERN = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
APP_NAME_MAX = 30
APP_NAME_RULE = "2 to 30 characters: lowercase letters, digits and hyphens, not starting or ending with a hyphen"


def app_name_problem(name: str) -> str | None:
    """Why `name` is not a valid Databricks App name, or None when it is."""
    if not 2 <= len(name) <= APP_NAME_MAX:
        return f"it has {len(name)} characters"
    if not APP_NAME_PATTERN.match(name):
        return "it has characters other than lowercase letters, digits and inner hyphens"
    return None


def suggested_name(name: str) -> str:
    """A valid name close to `name` (for the fix of a refused one)."""
    return re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:APP_NAME_MAX].strip("-") or "my-agent"


def bundle_key(app_name: str) -> str:
    """The key of the app under `resources.apps` (what `databricks bundle run` takes)."""
    return app_name.replace("-", "_")
