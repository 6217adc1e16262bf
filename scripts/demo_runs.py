"""How `migrate demo` runs its plan: each step a `migrate` command in its own process, exactly as a user runs
it, or an edit the assistant would make; the download once, then each app's steps in a thread of their own.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ASSISTANT = "(assistant)"  # the StepRun of an AssistantEdit


@dataclass(frozen=True)
class StepRun:
    argv: list[str]
    seconds: float
    exit_code: int
    output: str


@dataclass(frozen=True)
class AssistantEdit:
    """Judgement work the skills leave to the assistant, done here by an edit recorded for the example."""

    description: str
    app_dir: Path
    apply: Callable[[], str]


Step = list[str] | AssistantEdit


def run_migrate(argv: list[str], env: dict) -> StepRun:
    """One `migrate` command in its own process, exactly as a user runs it."""
    started = time.monotonic()
    completed = subprocess.run([sys.executable, "-m", "scripts.cli", *argv], env=env,
                               capture_output=True, text=True)
    return StepRun(argv, time.monotonic() - started, completed.returncode, completed.stdout + completed.stderr)


def run_step(step: Step, env: dict) -> StepRun:
    if isinstance(step, AssistantEdit):
        print(f"# assistant: {step.description}", file=sys.stderr)
        started = time.monotonic()
        done = step.apply()
        print(f"#   {done}", file=sys.stderr)
        return StepRun([ASSISTANT, "--app", str(step.app_dir)], time.monotonic() - started, 0, done)
    print(f"$ migrate {' '.join(step)}", file=sys.stderr)
    return run_migrate(step, env)


def run_in_order(steps: list[Step], env: dict, stop: threading.Event) -> list[StepRun]:
    """The steps one after the other, up to the first that fails (or until another app's steps failed)."""
    runs = []
    for step in steps:
        if stop.is_set():
            break
        try:
            runs.append(run_step(step, env))
        except BaseException:
            stop.set()
            raise
        if runs[-1].exit_code != 0:
            stop.set()
    return runs


def run_side_by_side(per_app: list[list[Step]], env: dict) -> list[StepRun]:
    """Each app's steps in its own thread (every step is its own process): on two cores the sync and async
    apps' servers, probes and originals overlap instead of waiting for each other. A failure in one app stops
    the other at its next step. The runs come back in the plan's order, one app after the other."""
    stop = threading.Event()
    with ThreadPoolExecutor(max_workers=len(per_app)) as pool:
        chains = [pool.submit(run_in_order, steps, env, stop) for steps in per_app]
    return [step_run for chain in chains for step_run in chain.result()]


def failed(runs: list[StepRun]) -> StepRun | None:
    return next((step_run for step_run in runs if step_run.exit_code != 0), None)
