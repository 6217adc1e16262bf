"""uv, as the steps run it on an app: the command itself, and an environment that is the app's, not ours."""

from __future__ import annotations

import os
import shutil
import sys
from importlib.util import find_spec

from scripts.errors import MigrateError

# Set by `uv run` for this tool's own environment; an app has (and locks) its own.
TOOL_ENVIRONMENT_VARIABLES = ("VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT")


def uv_command() -> list[str]:
    """`uv` on PATH, else the uv that runs us (`uv run` sets UV), else the uv module of this interpreter."""
    if shutil.which("uv"):
        return ["uv"]
    if os.environ.get("UV") and os.path.isfile(os.environ["UV"]):
        return [os.environ["UV"]]
    if find_spec("uv") is not None:
        return [sys.executable, "-m", "uv"]
    raise MigrateError("uv is not installed", "install it with `pip install uv` (https://docs.astral.sh/uv/)")


def app_environment(environment: dict[str, str] | None = None) -> dict[str, str]:
    """`environment` (default: ours) without the variables that would point uv at this tool's environment."""
    result = dict(os.environ if environment is None else environment)
    for name in TOOL_ENVIRONMENT_VARIABLES:
        result.pop(name, None)
    return result
