"""How long the harness's own commands take (issue 12 §5), as one JSON line.

    uv run python benchmarks/harness.py                    # the demo into a new temp folder, then the rest
    uv run python benchmarks/harness.py --workdir /tmp/h   # keep (and on a second run reuse) the demo's folder

It runs, each as a user does (`migrate ...` in its own interpreter, wall-clock seconds and the CPU seconds
of the command and its children):
- `migrate --help`;
- `migrate demo --mode both --workdir W` (the whole pipeline on examples/openai_tools: stand-in, registration,
  download, analyze, then per app scaffold, setup, code, smoke, resources, check; a sync and an async app);
- `migrate check --app W/openai-tools-app` twice against a workspace stand-in: the first may import the
  agent, the second is the check of an unchanged app (the import probe remembered by checks/probe_cache.py);
- `migrate smoke --app W/openai-tools-app --python PYTHON` (the demo's smoke: the app's server and the
  original model, each in its own process, started together), then the same again (`smoke_again`: the
  original's answer is remembered, only the app's server starts).

Targets: help ≤ 0.5 s, check of an unchanged app ≤ 3 s, smoke ≤ 15 s, demo ≤ 120 s. The machine's load
is recorded before and after: on a shared machine every figure moves with it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

APP = "openai-tools-app"


def timed(argv: list[str], env: dict | None = None) -> dict:
    """`migrate ARGV` in its own interpreter: wall seconds, CPU seconds (it and its children), exit code."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    completed = subprocess.run([sys.executable, "-m", "scripts.cli", *argv], cwd=REPO, env=env,
                               capture_output=True, text=True)
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if completed.returncode not in (0,):
        print(f"migrate {' '.join(argv)} exited {completed.returncode}:\n{completed.stdout}{completed.stderr}",
              file=sys.stderr)
    return {"seconds": round(wall, 2), "cpu_seconds": round(cpu, 2), "exit_code": completed.returncode}


def load() -> float:
    return round(os.getloadavg()[0], 2)


def measure(workdir: Path, modes: list[str]) -> dict:
    import standin

    result: dict = {"cores": os.cpu_count(), "load_before": load(),
                    "bytecode_written": not sys.dont_write_bytecode}
    result["help"] = timed(["--help"])
    for mode in modes:
        result[f"demo_{mode}"] = timed(["demo", "--mode", mode, "--workdir", str(workdir)])
    app = ["--app", str(workdir / APP), "--workdir", str(workdir)]
    with standin.running() as workspace:
        env = {**os.environ, **workspace.environ()}
        result["check_first"] = timed(["check", *app], env)
        result["check_unchanged"] = timed(["check", *app], env)
        if sys.dont_write_bytecode:  # what a machine that writes bytecode sees: `migrate` compiled once, then read
            compiled = {**env, "PYTHONPYCACHEPREFIX": str(workdir / ".harness-pycache")}
            compiled.pop("PYTHONDONTWRITEBYTECODE", None)
            timed(["check", *app], compiled)
            result["check_unchanged_compiled"] = timed(["check", *app], compiled)
        result["smoke"] = timed(["smoke", *app, "--python", sys.executable], env)
        # The same smoke again: the original's answer is remembered (scripts/smoke_original.py), only the app starts.
        result["smoke_again"] = timed(["smoke", *app, "--python", sys.executable], env)
    result["load_after"] = load()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, help="the demo's working directory (default: a new temp folder)")
    parser.add_argument("--modes", nargs="*", default=["both"], choices=("sync", "async", "both"),
                        help="the demo modes to time, in order (default: both, the demo's default); none: time "
                             "check and smoke on the demo already in --workdir")
    args = parser.parse_args(argv)
    if args.workdir is None:
        with tempfile.TemporaryDirectory(prefix="harness-") as folder:
            result = measure(Path(folder) / "work", args.modes)
    else:
        result = measure(args.workdir.resolve(), args.modes)
    print(json.dumps(result))
    failed = [name for name, value in result.items() if isinstance(value, dict) and value["exit_code"] != 0]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
