"""The code check's import probe, remembered by what decides its outcome, so an unchanged app is not
imported again (a fresh interpreter loading MLflow and the agent takes 10-30 s on a small machine).

The key hashes everything the import can depend on: every file of agent_server/, the dependency files and
.env, the interpreter, the probe itself, the modules asked about, and the DATABRICKS_*/MLFLOW_* variables
with the profiles file they point at. Only a clean import is remembered: a failure, or an import that found
no workspace, runs again every time. The cache lives in the user's cache folder, never in the app, so a pull request cannot
bring its own answer.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

from scripts.core import atomic

APP_FILES = ("pyproject.toml", "uv.lock", ".env")
ENVIRONMENT_PREFIXES = ("DATABRICKS_", "MLFLOW_")
SKIPPED_PARTS = {"__pycache__"}


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "agent-migrate" / "import-probe"


def probe_key(app: Path, probe: str, modules: list[str], environ: dict[str, str] | None = None) -> str:
    environ = os.environ if environ is None else environ
    digest = hashlib.sha256()

    def add(label: str, data: bytes) -> None:
        digest.update(f"{label}\0{len(data)}\0".encode())
        digest.update(data)

    add("interpreter", f"{sys.executable} {sys.version}".encode())
    add("probe", probe.encode())
    add("modules", json.dumps(sorted(modules)).encode())
    for name in sorted(environ):
        if name.startswith(ENVIRONMENT_PREFIXES) or name == "HOME":
            add(f"env:{name}", environ[name].encode())
    profiles = Path(environ.get("DATABRICKS_CONFIG_FILE") or Path(environ.get("HOME", "~")).expanduser() / ".databrickscfg")
    if profiles.is_file():  # a profile the import resolves through
        add("databrickscfg", profiles.read_bytes())
    package = app / "agent_server"
    files = sorted(path for path in package.rglob("*")
                   if path.is_file() and not SKIPPED_PARTS & set(path.parts) and path.suffix != ".pyc")
    files += [app / name for name in APP_FILES if (app / name).is_file()]
    for path in files:
        add(f"file:{path.relative_to(app).as_posix()}", path.read_bytes())
    return digest.hexdigest()


def cached_probe(app: Path, probe: str, modules: list[str], run: Callable[[], dict]) -> dict:
    """The probe's result for this app as it is now: remembered, or from `run()` (then remembered if clean)."""
    path = cache_dir() / f"{probe_key(app, probe, modules)}.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        pass
    result = run()
    if not result.get("error") and not result.get("missing"):
        try:
            atomic.write_text(path, json.dumps(result))
        except Exception:  # noqa: BLE001 (a cache that cannot be written only costs time)
            pass
    return result
