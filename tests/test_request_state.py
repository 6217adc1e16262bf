"""The request-state finder over many code shapes (quick, static): which writes a request makes to the agent's
attributes, class attributes and module globals, and what building the agent costs."""

from __future__ import annotations

import textwrap
from pathlib import Path

from scripts.model.agent_source import read_agent_source
from scripts.model.agent_state import agent_state_facts

HEADER = "import mlflow\nfrom mlflow.pyfunc import ResponsesAgent\n"


def facts(tmp_path: Path, agent: str, **code: str) -> tuple[list[dict], dict | None]:
    (tmp_path / "agent.py").write_text(HEADER + textwrap.dedent(agent))
    for name, text in code.items():
        path = tmp_path / "code" / f"{name}.py"
        path.parent.mkdir(exist_ok=True)
        path.write_text(textwrap.dedent(text))
    source = read_agent_source(tmp_path, "agent.py")
    return agent_state_facts(source.sources, source.agent_class)


def writes(tmp_path: Path, agent: str, **code: str) -> set[tuple]:
    found, _ = facts(tmp_path, agent, **code)
    return {(write["kind"], write["attribute"], write["how"], write["function"]) for write in found}


def test_assignments_items_mutations_and_setattr_on_self(tmp_path):
    found = writes(tmp_path, """
        class A(ResponsesAgent):
            def __init__(self):
                self.tools = {}
                self.history = []
                self.count = 0

            def predict_stream(self, request):
                self.tools = {"a": 1}
                self.count += 1
                self.tools["b"] = 2
                self.history.append(request)
                setattr(self, "last", request)
                setattr(self, request.name, 1)
                del self.extra
                yield from []
        mlflow.models.set_model(A())
    """)
    where = "A.predict_stream"
    assert found == {("instance", "tools", "assign", where), ("instance", "count", "augmented", where),
                     ("instance", "tools", "item", where), ("instance", "history", "mutation", where),
                     ("instance", "last", "setattr", where), ("instance", "<dynamic>", "setattr", where),
                     ("instance", "extra", "delete", where)}


def test_reads_are_not_writes_and_init_is_not_the_request_path(tmp_path):
    found, construction = facts(tmp_path, """
        class A(ResponsesAgent):
            def __init__(self):
                self.cache = {}
                self.cache["warm"] = 1

            def load_context(self, context):
                self.prompt = "hi"

            def predict(self, request):
                cached = self.cache.get(request.id)
                size = len(self.cache) + self.cache["warm"]
                answer = self.client.chat.completions.create(model="m", messages=[])
                local = {}
                local["x"] = size
                items = list(self.cache.items())
                return answer, cached, items
        mlflow.models.set_model(A())
    """)
    assert found == [] and construction == {"cheap": True, "costs": []}


def test_aliases_of_self_and_of_its_containers(tmp_path):
    found = writes(tmp_path, """
        class A(ResponsesAgent):
            def __init__(self):
                self._tools = {}

            def predict(self, request):
                me = self
                me.last = request
                tools = self._tools
                tools["search"] = request
                copy = dict(self._tools)
                copy["x"] = 1
                return None
        mlflow.models.set_model(A())
    """)
    assert found == {("instance", "last", "assign", "A.predict"), ("instance", "_tools", "item", "A.predict")}


def test_nested_calls_inherited_methods_overrides_and_super(tmp_path):
    found = writes(tmp_path, """
        class Base(ResponsesAgent):
            def predict(self, request):
                self._prepare(request)
                return self.hook(request)

            def _prepare(self, request):
                self._remember(request)

            def _remember(self, request):
                self.last_request = request

            def hook(self, request):
                self.never = 1  # overridden: the agent's hook runs instead

        class Agent(Base):
            def hook(self, request):
                self.hooked = request

            def predict_stream(self, request):
                super().predict(request)
                yield from []
        mlflow.models.set_model(Agent())
    """)
    assert found == {("instance", "last_request", "assign", "Base._remember"),
                     ("instance", "hooked", "assign", "Agent.hook")}


def test_tools_built_per_request_in_a_nested_function(tmp_path):
    found = writes(tmp_path, """
        class A(ResponsesAgent):
            def predict(self, request):
                def tool(x):
                    self.seen.append(x)
                    return x
                return tool(request)
        mlflow.models.set_model(A())
    """)
    assert found == {("instance", "seen", "mutation", "A.predict")}


def test_module_globals_class_attributes_and_shared_containers(tmp_path):
    found = writes(tmp_path, """
        COUNT = 0
        CACHE = {}

        class A(ResponsesAgent):
            history = []
            calls = 0

            def predict(self, request):
                global COUNT
                COUNT += 1
                CACHE[request.id] = request
                CACHE.update(last=request)
                self.history.append(request)
                type(self).calls += 1
                A.calls = 2
                return None
        mlflow.models.set_model(A())
    """)
    assert found == {("module", "COUNT", "augmented", "A.predict"), ("module", "CACHE", "item", "A.predict"),
                     ("module", "CACHE", "mutation", "A.predict"), ("class", "A.history", "mutation", "A.predict"),
                     ("class", "A.calls", "augmented", "A.predict"), ("class", "A.calls", "assign", "A.predict")}


def test_a_local_that_shadows_a_global_is_not_a_global(tmp_path):
    assert writes(tmp_path, """
        CACHE = {}

        class A(ResponsesAgent):
            def predict(self, request):
                CACHE = {}
                CACHE["x"] = 1
                return CACHE
        mlflow.models.set_model(A())
    """) == set()


def test_functions_of_code_modules_with_self_passed_and_their_globals(tmp_path):
    found = writes(tmp_path, """
        from helpers import remember, record
        import helpers

        class A(ResponsesAgent):
            def predict(self, request):
                record(self, request)
                remember(request)
                helpers.STATS["n"] = 1
                return None
        mlflow.models.set_model(A())
    """, helpers="""
        HISTORY = []
        STATS = {}

        def record(agent, request):
            agent.recorded = request

        def remember(request):
            HISTORY.append(request)
    """)
    assert found == {("instance", "recorded", "assign", "record"), ("module", "HISTORY", "mutation", "remember"),
                     ("module", "helpers.STATS", "item", "A.predict")}


def test_a_module_level_helper_instance_is_shared_state(tmp_path):
    found, _ = facts(tmp_path, """
        class Memory:
            def __init__(self):
                self.items = {}

            def put(self, key, value):
                self.items[key] = value

        MEMORY = Memory()

        class A(ResponsesAgent):
            async def apredict_stream(self, request):
                MEMORY.put(request.id, request)
                yield None
        mlflow.models.set_model(A())
    """)
    assert [(write["kind"], write["attribute"], write["instance"], write["root"]) for write in found] == [
        ("module", "MEMORY.items", "MEMORY", "apredict_stream")]


# ---------------------------------------------------------------------------------------------------- construction


def costs(tmp_path: Path, agent: str, **code: str) -> set[tuple[str, str]]:
    _, construction = facts(tmp_path, agent, **code)
    assert construction["cheap"] == (not construction["costs"])
    return {(cost["call"], cost["kind"]) for cost in construction["costs"]}


def test_building_a_client_is_cheap_calling_the_workspace_is_not(tmp_path):
    assert costs(tmp_path, """
        from openai import OpenAI
        class A(ResponsesAgent):
            def __init__(self):
                self.client = OpenAI()
                self.tools = {}
            def predict(self, request):
                return None
        mlflow.models.set_model(A())
    """) == set()
    assert costs(tmp_path, """
        from databricks.sdk import WorkspaceClient
        class A(ResponsesAgent):
            def __init__(self):
                self.w = WorkspaceClient()
                self.me = self.w.current_user.me()
            def predict(self, request):
                return None
        mlflow.models.set_model(A())
    """) == {("WorkspaceClient", "workspace-client")}


def test_file_reads_model_loads_and_what_setup_calls_or_builds(tmp_path):
    found = costs(tmp_path, """
        import joblib
        from helpers import Index

        STARTED = []

        class A(ResponsesAgent):
            def __init__(self):
                self.index = Index()
                STARTED.append(self)

            def load_context(self, context):
                self._load(context.artifacts["model"])
                with open(context.artifacts["prompt"]) as handle:
                    self.prompt = handle.read()

            def _load(self, path):
                self.model = joblib.load(path)

            def predict(self, request):
                return None
        mlflow.models.set_model(A())
    """, helpers="""
        from pathlib import Path

        class Index:
            def __init__(self):
                self.rows = Path("rows.txt").read_text().splitlines()
    """)
    assert found == {("joblib.load", "model-load"), ("open", "file"), ("Path.read_text", "file"),
                     ("module STARTED", "shared-write")}


def test_writes_under_a_lock_are_marked_shared_on_purpose(tmp_path):
    found, _ = facts(tmp_path, """
        import threading

        class A(ResponsesAgent):
            def __init__(self):
                self.memory = {}
                self.memory_lock = threading.Lock()

            def predict(self, request):
                with self.memory_lock:
                    self.memory[request.thread] = request
                self.last = request
                return None
        mlflow.models.set_model(A())
    """)
    assert [(write["attribute"], write["guarded"]) for write in found] == [("memory", True), ("last", False)]
