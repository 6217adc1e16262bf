"""The model download, run in a child process so that every wait is bounded and Ctrl-C is answered at once.

MLflow downloads a model's files from a thread pool whose threads the interpreter joins at exit, so an
interrupted download went on until the file in flight was done (27 s measured); a child process is killed
instead, and its staging folder removed. MLflow's HTTP waits are bounded through its own variables
(`MLFLOW_HTTP_REQUEST_TIMEOUT`, `..._MAX_RETRIES`, `..._BACKOFF_FACTOR`): left at their defaults, a refused
registry is retried for 4.5 minutes. A value the user set is kept.

    python -m scripts.model_fetch MODEL_URI REGISTRY_URI TRACKING_URI TARGET RESULT_FILE
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from scripts.core.atomic import describe, fix_for
from scripts.core.errors import MigrateError

TIMEOUT_VARIABLE = "MIGRATE_NETWORK_TIMEOUT_SECONDS"
DEFAULT_TIMEOUT_SECONDS = 30
# MLflow's words for a request that never got an answer (requests' and urllib3's exception texts).
NO_ANSWER = re.compile(r"Max retries exceeded|Failed to establish|Connection refused|timed out|Timeout|"
                       r"Name or service not known|NameResolution|Connection aborted|RemoteDisconnected", re.I)


def network_timeout() -> float:
    """Seconds any one wait on the network may take before the step gives up (30 unless the variable says)."""
    try:
        return max(1.0, float(os.environ.get(TIMEOUT_VARIABLE, DEFAULT_TIMEOUT_SECONDS)))
    except ValueError:
        return DEFAULT_TIMEOUT_SECONDS


def mlflow_environment(timeout: float) -> dict[str, str]:
    """MLflow's HTTP settings for a bounded download: one retry, a short backoff, `timeout` per request."""
    wanted = {"MLFLOW_HTTP_REQUEST_TIMEOUT": str(max(1, int(timeout // 2))),
              "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1"}
    return {**wanted, **{name: os.environ[name] for name in wanted if name in os.environ}}


# ---------------------------------------------------------------------------------------------------- parent


def fetch_in_child(uri: str, registry_uri: str, tracking_uri: str, target: Path) -> None:
    """Download `uri` into `target` in a child process; its MigrateError is raised here, Ctrl-C kills it."""
    handle, result_name = tempfile.mkstemp(prefix=".download-result.", suffix=".json")
    os.close(handle)
    result = Path(result_name)
    env = {**os.environ, **mlflow_environment(network_timeout())}
    command = [sys.executable, "-m", "scripts.model_fetch", uri, registry_uri, tracking_uri, str(target), str(result)]
    # Its own session: Ctrl-C reaches this process only, which then ends the child's whole group at once.
    child = subprocess.Popen(command, env=env, start_new_session=True)
    try:
        code = child.wait()
        outcome = json.loads(result.read_text(encoding="utf-8") or "{}")
    finally:
        if child.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
            child.wait()
        result.unlink(missing_ok=True)
    if "error" in outcome:
        raise MigrateError(outcome["error"]["message"], outcome["error"]["fix"])
    if code != 0:
        raise RuntimeError(f"the download process ended with exit code {code}; its traceback is above")


# ---------------------------------------------------------------------------------------------------- child


def explain(error: BaseException, uri: str, registry_uri: str, target: Path) -> MigrateError | None:
    from scripts.download import without_credentials

    registry_uri = without_credentials(registry_uri)  # messages are printed and may be pasted anywhere
    """The MigrateError that fits a failed download's cause, or None for a bug."""
    from mlflow.exceptions import MlflowException

    if isinstance(error, OSError) and error.errno is not None:
        where = Path(error.filename) if error.filename else target
        return MigrateError(f"could not write the download into {where}: {describe(error)}",
                            fix_for(target, error) if error.errno != errno.ENOENT else
                            "check that --workdir names a folder you can write to, then run the command again")
    if not isinstance(error, MlflowException):
        return None
    text = error.message
    if NO_ANSWER.search(text):
        return MigrateError(f"the MLflow registry at {registry_uri} did not answer while downloading {uri}: {text}",
                            "check that the registry is reachable from here (VPN, proxy, --registry-uri and "
                            "--tracking-uri, the host of --profile), then run the command again; waits are "
                            f"bounded by {TIMEOUT_VARIABLE} (default {DEFAULT_TIMEOUT_SECONDS} s)")
    if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND") or "not found" in text.lower():
        return MigrateError(f"{uri} is not in the registry {registry_uri}: {text}",
                            "check the model name and version (`databricks registered-models get` or the Catalog "
                            "Explorer), or pass the registry that holds it with --registry-uri")
    if error.error_code in ("UNAUTHENTICATED", "PERMISSION_DENIED") or re.search(r"\b40[13]\b", text):
        return MigrateError(f"the registry {registry_uri} refused to give you {uri}: {text}",
                            "log in again with `databricks auth login --profile PROFILE`, and ask for EXECUTE on "
                            "the model (USE CATALOG and USE SCHEMA on its catalog and schema)")
    return MigrateError(f"could not download {uri} from registry {registry_uri}: {text}",
                        "read the registry's message above; check --registry-uri and --tracking-uri")


def download(uri: str, registry_uri: str, tracking_uri: str, target: Path) -> None:
    import gc

    gc.disable()  # while MLflow imports: the collector would only walk what the import builds (a third of it)
    try:
        import mlflow
    finally:
        gc.enable()
    mlflow.set_registry_uri(registry_uri)
    # Set, not only passed: some of MLflow's lookups use the global tracking URI, whose default creates a
    # SQLite database (mlflow.db) in the current folder.
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(target), tracking_uri=tracking_uri)


def main(argv: list[str]) -> int:
    uri, registry_uri, tracking_uri, target, result = argv
    try:
        download(uri, registry_uri, tracking_uri, Path(target))
    except Exception as error:
        explained = explain(error, uri, registry_uri, Path(target))
        if explained is None:
            raise
        Path(result).write_text(json.dumps({"error": {"message": explained.message, "fix": explained.fix}}))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
