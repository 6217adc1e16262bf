"""The demo's plan, without running it: which apps it builds, in which order, and the recorded async edits."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from scripts import demo, demo_runs
from scripts.core.errors import MigrateError

REGISTERED = {"registry_uri": "sqlite:///r.db", "tracking_uri": "sqlite:///r.db"}


def test_both_modes_for_an_example_with_a_recorded_conversion():
    assert demo.demo_modes("both", "openai_tools") == ["sync", "async"]
    assert demo.demo_modes("sync", "openai_tools") == ["sync"]


def test_async_without_a_recorded_conversion_is_refused_with_the_fix():
    with pytest.raises(MigrateError) as refused:
        demo.demo_modes("async", "langgraph_agent")
    assert "--mode sync" in refused.value.fix
    assert demo.demo_modes("both", "langgraph_agent") == ["sync"]


def test_the_plan_follows_agents_md_order_and_converts_before_the_async_smoke(tmp_path):
    steps = demo.pipeline("openai_tools", "ep", REGISTERED, tmp_path, ["sync", "async"]).steps
    names = [step[0] if isinstance(step, list) else "assistant" for step in steps]
    per_app = ["scaffold", "setup", "code", "smoke", "replay", "resources", "check"]
    assert names == ["download", "analyze", *per_app, *per_app[:3], "assistant", *per_app[3:]]
    assert steps[-1][0] == "check"
    apps = {step[step.index("--app") + 1] for step in steps if isinstance(step, list) and "--app" in step}
    assert apps == {str(tmp_path / "openai-tools-app"), str(tmp_path / "openai-tools-async-app")}


def test_a_conversion_that_no_longer_matches_the_generated_code_says_so(tmp_path):
    conversions = demo.load_example_module("async_conversions")
    agent = tmp_path / "agent.py"
    agent.write_text("client = SomethingElse()\n")
    with pytest.raises(conversions.ConversionMismatch, match="update examples/async_conversions.py"):
        conversions.convert("openai_tools", agent)
    assert agent.read_text() == "client = SomethingElse()\n"  # nothing half-applied


def test_the_conversion_applies_each_edit_once(tmp_path):
    conversions = demo.load_example_module("async_conversions")
    agent = tmp_path / "agent.py"
    agent.write_text("\n".join(before for before, _ in conversions.ASYNC_CONVERSIONS["openai_tools"]) + "\n")
    assert conversions.convert("openai_tools", agent) == 2
    text = agent.read_text()
    assert "await client.chat.completions.create(" in text and "AsyncOpenAI(" in text


def test_a_second_demo_rewrites_its_own_apps_over_the_last_assistant_edit(tmp_path):
    (tmp_path / "openai-tools-async-app").mkdir()
    steps = demo.pipeline("openai_tools", "ep", REGISTERED, tmp_path, ["sync", "async"]).steps
    forced = {(step[0], "--force" in step) for step in steps if isinstance(step, list) and step[0] in ("scaffold", "code")}
    assert forced == {("scaffold", False), ("code", False), ("scaffold", True), ("code", True)}


def test_the_demo_registers_once_per_workdir_and_reuses_the_record(tmp_path):
    """register_once calls the catalog on a new workdir, records where the model went, and reads that back after."""
    calls = []

    class Catalog:  # the catalog's registration logs a real model (e2e: conftest, test_demo); here only its answer
        @staticmethod
        def register_example(name, registry_dir, env):
            calls.append((name, registry_dir))
            return {"name": f"main.agents.{name}", "version": "1", **REGISTERED}

    (tmp_path / demo.REGISTRY_DIR).mkdir()
    first = demo.register_once(Catalog, "openai_tools", tmp_path, {})
    assert calls == [("openai_tools", tmp_path / demo.REGISTRY_DIR)]
    assert (tmp_path / demo.REGISTRY_DIR / "openai_tools.json").is_file()
    assert demo.register_once(Catalog, "openai_tools", tmp_path, {}) == first and len(calls) == 1



def recorded_edit(name: str, app_dir: Path, applied: list[str], before=lambda: None) -> demo_runs.AssistantEdit:
    def apply() -> str:
        before()
        applied.append(name)
        return name
    return demo_runs.AssistantEdit(name, app_dir, apply)


def test_the_apps_steps_run_side_by_side_and_come_back_in_the_plans_order(tmp_path):
    """Each app's steps run in a thread of their own: both apps' first steps are running at the same time."""
    both_started = threading.Barrier(2, timeout=30)  # broken (an error) if the apps ran one after the other
    applied: list[str] = []
    per_app = [[recorded_edit(f"{mode} {n}", tmp_path, applied, both_started.wait if n == 1 else lambda: None)
                for n in (1, 2)] for mode in ("sync", "async")]
    runs = demo_runs.run_side_by_side(per_app, {})
    assert [step_run.output for step_run in runs] == ["sync 1", "sync 2", "async 1", "async 2"]
    assert sorted(applied) == sorted(step_run.output for step_run in runs)


def test_a_failing_step_stops_its_app_and_tells_the_other_to_stop(tmp_path):
    """A `migrate` that exits non-zero (here 2: no such step) ends its app's steps and sets the stop the other
    app checks before each of its steps; a step after a stop never runs."""
    stop, applied = threading.Event(), []
    runs = demo_runs.run_in_order([["no-such-step"], recorded_edit("after", tmp_path, applied)], {}, stop)
    assert [step_run.exit_code for step_run in runs] == [2] and stop.is_set() and applied == []
    assert demo_runs.failed(runs).argv == ["no-such-step"]
    assert demo_runs.run_in_order([recorded_edit("other app", tmp_path, applied)], {}, stop) == [] and applied == []
    # An assistant edit that raises (a recorded conversion that no longer matches) stops the other app too.
    stop = threading.Event()
    with pytest.raises(RuntimeError):
        demo_runs.run_in_order([recorded_edit("raises", tmp_path, applied, lambda: (_ for _ in ()).throw(RuntimeError))],
                          {}, stop)
    assert stop.is_set()


def test_a_second_demo_asks_for_the_first_ones_stand_in_port_and_token(tmp_path):
    """The same DATABRICKS_HOST and token let the second demo's steps reuse the remembered original answers and
    import probes; a port now taken keeps the token only, and a record that cannot be read is ignored."""
    import socket

    (tmp_path / demo.REGISTRY_DIR).mkdir()
    assert demo.standin_identity(tmp_path) == {}

    from scripts.app_process import free_port

    port = free_port()

    class Workspace:
        url, token = f"http://127.0.0.1:{port}", "standin-0123"

    demo.remember_standin_identity(tmp_path, Workspace)
    assert demo.standin_identity(tmp_path) == {"port": port, "token": "standin-0123"}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        Workspace.url = f"http://127.0.0.1:{taken.getsockname()[1]}"
        demo.remember_standin_identity(tmp_path, Workspace)
        assert demo.standin_identity(tmp_path) == {"token": "standin-0123"}
    (tmp_path / demo.REGISTRY_DIR / demo.STANDIN_RECORD).write_text("{not json")
    assert demo.standin_identity(tmp_path) == {}
