"""The original model's answer to the smoke request, for the parity comparison.

`mlflow.pyfunc.load_model` on original_mlflow_model/ runs in its own interpreter (the app's, or --python),
in its own process group, at the same time as the app's server starts.

The original never changes (`migrate download` writes it once and `migrate check` verifies its hashes), so
its answer is remembered: a smoke run asking the same original the same request, from the same interpreter
and the same workspace settings, reuses the answer instead of loading MLflow and the agent again (10-30 s
of CPU on a small machine). The key is the original's files, the request, the interpreter, the runner and
every DATABRICKS_*/MLFLOW_* setting the child sees but the experiment its traces go to; only an answer
without error is kept (for replay's list, only one where every request was answered), in the user's cache
folder (as checks/probe_cache.py keeps the import probe), never in the app.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from scripts import app_process, processes
from scripts.core import atomic
from scripts.core.layout import MigrationLayout
from scripts.source_facts import hash_tree, manifest_digest

ORIGINAL_TIMEOUT = 600.0

# Runs in its own interpreter (the app's or the one given): loads the original model the way Model Serving
# does (MLflow's code-model loader puts code/ on sys.path) and records predict and predict_stream.
ORIGINAL_RUNNER = """
import gc; gc.disable()  # while MLflow and the model load, as the app's start does (agent_server/start_server.py)
import json, sys, time
import mlflow.pyfunc
model_dir, request_path, output_path = sys.argv[1:4]
many = sys.argv[4:] == ["many"]  # a list of requests (migrate replay): one answer or error each, timed
requests = json.load(open(request_path))
model = mlflow.pyfunc.load_model(model_dir)
gc.collect(); gc.freeze(); gc.enable()  # the requests run with the collector on, as they do on the endpoint
def plain(value):
    return value.model_dump(exclude_none=True) if hasattr(value, "model_dump") else value
def answer(request):
    started = time.monotonic()
    invoked = model.predict(request)
    seconds = time.monotonic() - started  # predict alone, as the app's non-streaming answer is timed
    try:
        events = list(model.predict_stream(request))
    except NotImplementedError:  # a ChatAgent without predict_stream of its own
        events = None
    return {"format": "chat_agent" if "messages" in request else "responses", "invoke": plain(invoked),
            "stream": None if events is None else [plain(event) for event in events],
            **({"seconds": seconds} if many else {})}
def answer_or_error(request):
    try:
        return answer(request)
    except Exception as error:
        return {"error": f"{type(error).__name__}: {error}"}
json.dump([answer_or_error(request) for request in requests] if many else answer(requests), open(output_path, "w"))
"""



def original_python(app_dir: Path, python: Path | None) -> Path:
    """The interpreter for the original model: --python, else the app's uv environment, else this one."""
    if python is not None:
        return python
    app_python = app_dir / ".venv" / "bin" / "python"
    return app_python if app_python.exists() else Path(sys.executable)


def answers_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "agent-migrate" / "original-answers"


# Where the original's traces go, not what it answers: two apps of one original (a sync and an async app, each
# with its own experiment) share the answers, so the second app's smoke and replay do not load the original again.
TRACE_DESTINATION_SETTINGS = frozenset({"MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME"})


def answer_key(original: Path, request: dict, python: Path, environment: dict[str, str]) -> str:
    """What the original's answer depends on: its files, the request, the interpreter, the workspace settings."""
    settings = {name: value for name, value in environment.items()
                if name.startswith(("DATABRICKS_", "MLFLOW_")) and name not in TRACE_DESTINATION_SETTINGS}
    facts = {"original": manifest_digest(hash_tree(original)), "request": request, "runner": ORIGINAL_RUNNER,
             "python": str(python), "settings": settings}
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()


class OriginalRun:
    """predict and predict_stream of original_mlflow_model/ in a separate process, or the remembered answer.

    Started before the app's server so the two load MLflow and the agent at the same time (on a small machine
    that halves the step's wait); `answer()` waits for it, and leaving the `with` block always stops it.
    Two runs asking for the same answer at once (the demo smokes its sync and async apps side by side) do not
    both load the original: the first holds a lock on the answer's key, the second waits for its answer, and
    runs the original itself only when the first did not remember one.
    """

    def __init__(self, layout: MigrationLayout, request: dict | list[dict], python: Path, many: bool = False):
        """`many`: `request` is a list of requests (migrate replay), answered in one process, each with its
        own answer or error and the seconds it took."""
        self._process = None
        self._scratch = tempfile.TemporaryDirectory(prefix="migrate-original-")
        # This environment plus the app's .env (without overriding it), so both sides reach the same workspace.
        self._environment = processes.child_environment(dotenv=layout.root / ".env")
        key = answer_key(layout.original, request, python, self._environment)
        self._remembered = answers_dir() / f"{key}.json"
        scratch_dir = Path(self._scratch.name)
        (scratch_dir / "request.json").write_text(json.dumps(request), encoding="utf-8")
        self._answer_path = scratch_dir / "answer.json"
        self._log_path = scratch_dir / "original.log"
        self._argv = [str(python), "-c", ORIGINAL_RUNNER, str(layout.original), str(scratch_dir / "request.json"),
                      str(self._answer_path), *(["many"] if many else [])]
        self._lock = KeyLock(answers_dir() / f"{key}.lock")
        if self._remembered.is_file():
            print("the original model's answer to this request is remembered from an earlier run "
                  "(same original, interpreter and workspace settings)", file=sys.stderr)
        elif self._lock.acquire(blocking=False):
            self._start()
        else:
            print("another run is asking the original model the same request: waiting for its answer",
                  file=sys.stderr)

    def _start(self) -> None:
        with open(self._log_path, "w", encoding="utf-8") as log:
            # cwd is the scratch folder: a tracking store the agent creates by default lands there, not in the app.
            self._process = processes.start(self._argv, cwd=Path(self._scratch.name), stdout=log,
                                            stderr=subprocess.STDOUT,
                                            env=app_process.local_run_environment(self._environment))

    def answer(self) -> dict:
        """{invoke, stream} as the original answered, or {error}."""
        if self._process is None and not self._remembered.is_file():
            self._lock.acquire(blocking=True)  # the other run's answer, or the right to run the original
            if self._remembered.is_file():
                self._lock.release()
            else:
                self._start()
        if self._process is None:
            try:
                return json.loads(self._remembered.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                return {"error": f"the remembered answer {self._remembered} cannot be read: delete it and run again"}
        try:
            return self._answer_of_the_process()
        finally:
            self._lock.release()

    def _answer_of_the_process(self) -> dict:
        try:
            self._process.wait(timeout=ORIGINAL_TIMEOUT)
        except subprocess.TimeoutExpired:
            return {"error": f"predict did not finish within {ORIGINAL_TIMEOUT:.0f}s"}
        if self._process.returncode != 0:
            tail = app_process.read_tail(self._log_path, 15)
            return {"error": f"exit code {self._process.returncode}: " + "\n".join(tail)}
        answer = json.loads(self._answer_path.read_text(encoding="utf-8"))
        # Replay's list of answers is kept only when every request was answered: an error (a workspace that
        # did not answer, a timeout) must be tried again on the next run, not remembered.
        if not (isinstance(answer, list) and any("error" in item for item in answer)):
            try:
                atomic.write_text(self._remembered, json.dumps(answer))
            except Exception:  # noqa: BLE001 (a cache that cannot be written only costs time)
                pass
        return answer

    def __enter__(self) -> OriginalRun:
        return self

    def __exit__(self, *exc_info) -> None:
        if self._process is not None:
            processes.stop(self._process)
        self._lock.release()
        self._scratch.cleanup()


class KeyLock:
    """An flock on one file of the cache folder, held by one process at a time; the kernel drops it when the
    holder dies, so a killed run never leaves the next one waiting. Without a writable cache folder it is
    always free (the answer is then simply not shared)."""

    def __init__(self, path: Path):
        self._path, self._file = path, None

    def acquire(self, blocking: bool) -> bool:
        import fcntl

        if self._file is not None:
            return True
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            handle = open(self._path, "a")  # noqa: SIM115 (held until release)
        except OSError:
            return True
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except OSError:
            handle.close()
            return False
        self._file = handle
        return True

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing drops the flock
            self._file = None


def parity_skipped(layout: MigrationLayout, parity: str) -> str | None:
    """Why the original is not run, or None when it is."""
    if parity == "off":
        return "--parity off"
    if not (layout.original / "MLmodel").is_file():
        return f"no {layout.relative(layout.original)}/MLmodel next to the app"
    return None


def parity_record(original: OriginalRun | None, skipped: str | None, answered: bool) -> dict:
    if skipped is not None:
        return {"status": "skipped", "reason": skipped, "original": None, "error": None}
    if not answered:
        return {"status": "skipped", "reason": "the app did not answer", "original": None, "error": None}
    print("waiting for the original model's answer to the same request", file=sys.stderr)
    answer = original.answer()
    if "error" in answer:
        return {"status": "failed", "reason": None, "original": None, "error": answer["error"]}
    return {"status": "ran", "reason": None, "original": answer, "error": None}
