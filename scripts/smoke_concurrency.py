"""`migrate smoke --concurrency N`: N different inputs (the input example with its last question varied) sent to
the app at once, and the original model's answers to the same inputs, recorded for checks/identity.py.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from scripts.core.layout import MigrationLayout

# Run by the original's own Python (its dependencies, not the app's): predict on each request, answers as JSON.
ORIGINAL_ANSWERS = """
import json, sys
import mlflow.pyfunc
model_dir, requests_path, output_path = sys.argv[1:4]
model = mlflow.pyfunc.load_model(model_dir)
def plain(value):
    return value.model_dump(exclude_none=True) if hasattr(value, "model_dump") else value
json.dump([plain(model.predict(request)) for request in json.load(open(requests_path))], open(output_path, "w"))
"""


def varied_inputs(request: dict, count: int) -> list[dict]:
    """`count` different requests: the last user message of `request` with a numbered variation."""
    variants = []
    for index in range(count):
        items = json.loads(json.dumps(request["input"]))
        for item in reversed(items):
            if isinstance(item, dict) and item.get("role") == "user" and isinstance(item.get("content"), str):
                item["content"] += f" (variant {index + 1} of {count})"
                break
        else:
            items.append({"role": "user", "content": f"Variant {index + 1} of {count}."})
        variants.append({**request, "input": items})
    return variants


class OriginalAnswers:
    """The original model's predict on each request, in its own process, started early (like OriginalRun)."""

    def __init__(self, layout: MigrationLayout, requests: list[dict], python: Path, env: dict[str, str]):
        self._scratch = tempfile.TemporaryDirectory(prefix="migrate-concurrency-")
        folder = Path(self._scratch.name)
        (folder / "requests.json").write_text(json.dumps(requests), encoding="utf-8")
        self._output = folder / "answers.json"
        self._log = folder / "log.txt"
        with open(self._log, "w", encoding="utf-8") as log:
            self._process = subprocess.Popen(
                [str(python), "-c", ORIGINAL_ANSWERS, str(layout.original), str(folder / "requests.json"),
                 str(self._output)], cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True)

    def answers(self, timeout: float) -> list[dict] | str:
        try:
            self._process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return f"the original did not answer within {timeout:.0f}s"
        if self._process.returncode != 0:
            return "the original failed: " + self._log.read_text(encoding="utf-8")[-1500:]
        return json.loads(self._output.read_text(encoding="utf-8"))

    def close(self) -> None:
        from scripts import app_process

        app_process.stop(self._process)
        self._scratch.cleanup()


def ask_at_once(url: str, requests: list[dict], timeout: float, headers: list[dict]) -> list[dict]:
    def one(pair: tuple[dict, dict]) -> dict:
        request, header = pair
        try:
            response = httpx.post(f"{url}/invocations", json=request, headers=header, timeout=timeout)
        except httpx.HTTPError as error:
            return {"status_code": None, "error": f"{type(error).__name__}: {error}"}
        try:
            body = response.json()
        except ValueError:
            body = response.text[:2000]
        return {"status_code": response.status_code, "error": None, "body": body}

    with ThreadPoolExecutor(max_workers=max(1, len(requests))) as pool:
        return list(pool.map(one, zip(requests, headers)))


def concurrency_record(requests: list[dict], app: list[dict], original: list[dict] | str) -> dict:
    if isinstance(original, str):
        return {"n": len(requests), "inputs": requests, "app": app, "original": [], "error": original}
    return {"n": len(requests), "inputs": requests, "app": app, "original": original, "error": None}
