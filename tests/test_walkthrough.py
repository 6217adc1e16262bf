"""The scripted walkthrough: follow AGENTS.md's step table literally on an example agent, against the stand-in.

Each row's command cell, then its check cell, runs in order with the placeholders filled in: the first as a
shell command (`uv run migrate ...`), the rest through the same `scripts.cli.main` in this process:

    <ENDPOINT>  a serving endpoint on the stand-in serving examples/openai_tools (conftest `endpoint_for`)
    <PROFILE>   a profile written into a temporary DATABRICKS_CONFIG_FILE, pointing at the stand-in's host
                with its token; no DATABRICKS_HOST/TOKEN is set, so `--profile` is what reaches the workspace
    <APP_NAME>  walkthrough-app (and <APP_KEY> walkthrough_app)
    <MODE>      sync (async mode leaves blocking calls for the assistant to convert, by design)
    <WORKDIR>   a fresh folder under tmp_path
    <WAREHOUSE_ID> the stand-in's warehouse over the endpoint's inference table, filled as the demo fills it

Two additions, because the real defaults need a real workspace or a network: the download gets
`--registry-uri/--tracking-uri` of the local SQLite registry the example was registered in (the default is
Unity Catalog), and the smoke test gets `--python` with this interpreter (which has the app's dependencies;
the default `uv run start-server` would install them from the network); so does replay. Rows marked
"(workspace only)" are skipped: they need a real Databricks workspace (bundle deploy, the deployed app). The
walk must end with `migrate check` green. When AGENTS.md drifts from the commands, this test fails.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from scripts import replay_demo
from scripts.demo import EXAMPLES_DIR
from tests.conftest import migrate_in_process
from tests.test_skills import REPO, agents_table, migrate_commands, subcommand

pytestmark = [pytest.mark.e2e, pytest.mark.serial_minutes(1.6)]

EXAMPLE = "openai_tools"
PROFILE = "walkthrough"
APP_NAME = "walkthrough-app"
COMMAND_TIMEOUT = 900


def profile_environment(workspace, config_file: Path) -> dict[str, str]:
    """This environment without any workspace variable, plus a config file holding one profile for the stand-in."""
    import standin

    config_file.write_text(f"[{PROFILE}]\nhost = {workspace.url}\ntoken = {workspace.token}\n", encoding="utf-8")
    env = {key: value for key, value in os.environ.items() if key not in standin.WORKSPACE_VARIABLES}
    env["DATABRICKS_CONFIG_FILE"] = str(config_file)
    return env


def fill(cell: str, values: dict[str, str]) -> str:
    for placeholder, value in values.items():
        cell = cell.replace(placeholder, value)
    assert "<" not in cell, f"a placeholder has no value in the walkthrough: {cell}"
    return cell


def additions(command: str, registered: dict) -> list[str]:
    """What the walkthrough appends to a command (see the module docstring for why)."""
    step = subcommand(command)
    if step == "download":
        return ["--registry-uri", registered["registry_uri"], "--tracking-uri", registered["tracking_uri"]]
    if step in ("smoke", "replay"):
        return ["--python", sys.executable]
    return []


def run_cell(command: str, registered: dict, env: dict[str, str], *, in_shell: bool) -> subprocess.CompletedProcess:
    """The cell's command as a shell runs it (`in_shell`), or its `migrate` arguments through the same
    `scripts.cli.main` in this process: each command in its own interpreter cost ~2 s of CPU for nothing
    the walk proves once the first has shown that `uv run migrate` resolves from a shell."""
    assert migrate_commands(command) == [command], f"not one plain `migrate` command: {command}"
    argv = shlex.split(command) + additions(command, registered)
    assert argv[:3] == ["uv", "run", "migrate"], f"not `uv run migrate`: {command}"
    if not in_shell:
        return migrate_in_process(*argv[3:], env=env, cwd=REPO)
    if shutil.which("uv") is None:
        argv = [sys.executable, "-m", "scripts.cli", *argv[3:]]
    return subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=COMMAND_TIMEOUT)


def test_agents_md_table_migrates_the_example(standin_workspace, registered_example, endpoint_for, tmp_path):
    registered = registered_example(EXAMPLE)
    endpoint = endpoint_for(EXAMPLE)
    env = profile_environment(standin_workspace, tmp_path / "databrickscfg")
    workdir = tmp_path / "work"
    # The endpoint logs to an inference table the replay row reads, filled as the demo fills it.
    warehouse = replay_demo.serve_logged_traffic(standin_workspace, endpoint, registered, EXAMPLES_DIR / EXAMPLE)
    values = {"<ENDPOINT>": endpoint, "<PROFILE>": PROFILE, "<APP_NAME>": APP_NAME, "<MODE>": "sync",
              "<WORKDIR>": str(workdir), "<APP_KEY>": APP_NAME.replace("-", "_"), "<WAREHOUSE_ID>": warehouse}

    rows = agents_table((REPO / "AGENTS.md").read_text(encoding="utf-8"))
    assert rows, "AGENTS.md has no step table"
    ran, skipped = [], []
    for row in rows:
        if row.workspace_only:
            skipped.append(row.step)
            continue
        for cell in (row.command, row.check):
            if not cell:
                continue
            command = fill(cell, values)
            completed = run_cell(command, registered, env, in_shell=not ran)
            ran.append((row.step, command, completed))
            assert completed.returncode == 0, (
                f"row {row.step!r}: `{command}` exited {completed.returncode}\n{completed.stdout}\n{completed.stderr}")

    # The walk downloaded what the endpoint serves, reaching the workspace through the profile.
    download = json.loads((workdir / "migration" / "reports" / "download.json").read_text(encoding="utf-8"))
    assert download["payload"]["model"]["uri"] == registered["model_uri"]
    assert (workdir / APP_NAME / ".env").read_text(encoding="utf-8").count(f"DATABRICKS_CONFIG_PROFILE={PROFILE}") == 1

    # Every registered step ran; only the workspace rows were skipped; the walk ends with `migrate check` green.
    assert {subcommand(command) for _, command, _ in ran} >= {
        "download", "analyze", "scaffold", "code", "setup", "smoke", "replay", "resources", "check"}
    assert skipped and all("workspace only" in step for step in skipped)
    last_step, last_command, last = ran[-1]
    assert subcommand(last_command) == "check" and "--json" in last_command
    verdict = json.loads(last.stdout)
    assert verdict["status"] == "ok", verdict
    assert set(verdict["checked"]) >= {"download", "analyze", "scaffold", "code", "setup", "smoke", "replay",
                                       "resources"}


def test_a_placeholder_without_a_value_stops_the_walk():
    with pytest.raises(AssertionError, match="placeholder has no value"):
        fill("uv run migrate download --endpoint <ENDPOINT> --profile <PROFILE>", {"<PROFILE>": PROFILE})
