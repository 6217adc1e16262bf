""".env and the MLflow experiment: what setup gives the app to run locally and to trace into.

`.env` is read and written with python-dotenv (`dotenv_values`, `set_key`), as start_server and smoke read it:
keys of `.env.example` that are missing are added, the experiment id and profile filled in, and a value the
user set is never replaced. `.env` is kept out of git.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

from scripts.core import atomic
from scripts.gitignore import ENV_FILE, env_is_ignored
from scripts.workspace import reaching, workspace_client

ENV_EXAMPLE = ".env.example"
EXPERIMENT_KEY = "MLFLOW_EXPERIMENT_ID"
PROFILE_KEY = "DATABRICKS_CONFIG_PROFILE"


def env_values(text: str) -> dict[str, str]:
    from dotenv import dotenv_values

    return {key: value or "" for key, value in dotenv_values(stream=io.StringIO(text)).items()}


def env_action(key: str, wanted: dict[str, str], defaults: dict[str, str], present: dict[str, str]) -> str:
    """added (missing), kept (the user's own value, not the one wanted), filled (empty or the example's
    default, replaced by the wanted value), or unchanged (already what is wanted, or nothing wanted)."""
    if key not in present:
        return "added"
    mine = present[key]
    if key in wanted and mine == wanted[key]:
        return "unchanged"
    if mine and mine != defaults.get(key, ""):
        return "kept"
    return "filled" if key in wanted else "unchanged"


def fill_env(app_dir: Path, wanted: dict[str, str]) -> tuple[str, dict[str, str]]:
    """Create or complete `.env` from `.env.example`; return what happened to the file and to each key."""
    from dotenv import set_key

    example_path, path = app_dir / ENV_EXAMPLE, app_dir / ENV_FILE
    example = example_path.read_text(encoding="utf-8") if example_path.is_file() else ""
    created = not path.exists()
    if created:
        atomic.write_text(path, example)
    before = path.read_text(encoding="utf-8")
    defaults, present = env_values(example), env_values(before)
    actions: dict[str, str] = {}
    for key, value in {**defaults, **wanted}.items():
        action = env_action(key, wanted, defaults, present)
        if action in ("added", "filled"):
            set_key(path, key, value, quote_mode="never")
        actions[key] = "added" if created and action == "unchanged" else action
    after = path.read_text(encoding="utf-8")
    return ("created" if created else "unchanged" if after == before else "updated"), actions


def ensure_env_ignored(app_dir: Path) -> bool:
    """Add `.env` to .gitignore when git would not ignore it; True when it was added."""
    if env_is_ignored(app_dir):
        return False
    path = app_dir / ".gitignore"
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    atomic.write_text(path, text + ("" if not text or text.endswith("\n") else "\n") + f"{ENV_FILE}\n")
    return True


# --- the MLflow experiment ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Experiment:
    name: str | None
    experiment_id: str | None
    status: str  # created | reused | not_configured


def workspace_configured(profile: str | None) -> bool:
    return bool(profile or os.environ.get("DATABRICKS_HOST") or os.environ.get("DATABRICKS_CONFIG_PROFILE"))


def find_or_create_experiment(profile: str | None, app_name: str) -> Experiment:
    """`/Users/<me>/<app-name>`, reused when it exists (so re-running setup creates nothing new)."""
    from databricks.sdk.errors import NotFound

    client = workspace_client(profile, code="SET012")
    with reaching(client, profile, "create the MLflow experiment", code="SET012"):
        me = client.current_user.me().user_name
        name = f"/Users/{me}/{app_name}"
        try:
            found = client.experiments.get_by_name(name).experiment
            if found is not None and found.experiment_id:
                return Experiment(name, found.experiment_id, "reused")
        except NotFound:
            pass
        return Experiment(name, client.experiments.create_experiment(name=name).experiment_id, "created")
