"""The concurrency benchmark runs end to end and ends with its JSON line. No timing is asserted: figures
depend on the machine; this only checks the benchmark still works and reports what issue 6 asks for."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO

FIGURES = {"rps", "p50_ms", "p99_ms", "ratio_to_ideal", "errors"}


@pytest.mark.e2e
def test_tiny_benchmark_prints_the_json_line(registered_example, tmp_path):
    # The session's registration of the example: logging it again would only repeat conftest's work.
    registration = tmp_path / "registered.json"
    registration.write_text(json.dumps(registered_example("openai_tools")))
    completed = subprocess.run([sys.executable, "benchmarks/concurrency.py", "--concurrency", "2", "--requests", "4",
                                "--latency-ms", "10", "--registered", str(registration)],
                               cwd=REPO, capture_output=True, text=True, timeout=1800)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    modes = ("ceiling", "original", "hand_sync", "hand_async", "sync", "sync_2w", "async")
    assert {"concurrency", "latency_ms", "ratios", *modes} <= set(result)
    assert result["concurrency"] == 2 and result["latency_ms"] == 10 and result["trace_store"] == "http"
    for mode in modes:
        assert FIGURES <= set(result[mode]), mode
        assert result[mode]["errors"] == 0, result[mode]
    assert result["llm_calls_per_request"] == 2  # the example's tool call, then its answer
    # Every served mode against the original, its hand-migration peer and the ideal.
    assert set(result["ratios"]) == set(modes) - {"ceiling", "original"}
    assert result["ratios"]["async"]["to_hand"] == round(result["async"]["rps"] / result["hand_async"]["rps"], 2)
    assert result["ratios"]["sync_2w"]["to_hand"] == round(result["sync_2w"]["rps"] / result["hand_sync"]["rps"], 2)
