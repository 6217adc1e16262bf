"""The example agents, and how to register one: what the demo and the tests migrate.

Each example is a folder with the agent as it ran on Model Serving (`agent.py`, `code/`, `artifacts/`,
`input_example.json`) and `log_model.py`, which says how it was logged (resources, code_paths, artifacts).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

EXAMPLES_DIR = Path(__file__).resolve().parent

EXAMPLES = {
    "openai_tools": "ResponsesAgent with an OpenAI tool loop, a code_paths module, a prompt artifact and all "
                    "ten resource types (one on behalf of the user)",
    "langgraph_agent": "LangGraph agent with ChatDatabricks and a tool, streaming graph updates, an auth_policy "
                       "with user scopes",
    "faq_agent": "ResponsesAgent whose __init__ builds its state (model config, an FAQ keyword index from an "
                 "artifact, per-thread memory under a lock) and calls the LLM with plain httpx",
}


class RegistrationFailed(RuntimeError):
    pass


def register_example(name: str, registry_dir: Path, env: dict) -> dict:
    """Log and register example `name` into the SQLite registry in `registry_dir`; return where it is.

    `env` must point DATABRICKS_HOST at a workspace (the stand-in): logging runs the input example.
    """
    if name not in EXAMPLES:
        raise KeyError(name)
    completed = subprocess.run([sys.executable, str(EXAMPLES_DIR / "register.py"), name, str(registry_dir)],
                               env=env, capture_output=True, text=True, cwd=registry_dir)
    if completed.returncode != 0:
        raise RegistrationFailed(f"registering examples/{name} failed:\n{completed.stderr[-4000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])
