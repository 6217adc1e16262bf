"""Models whose agent is not a class of ours to rewrite: MLflow's langchain flavor, and agents built by a factory.

A LangChain/LangGraph model logged from code (`mlflow.langchain.log_model(lc_model="agent.py")`) downloads
like a pyfunc model from code, but its MLmodel has `flavors.langchain` and `python_function.loader_module:
mlflow.langchain` (checked with MLflow 3.17: `model_code_path` sits under python_function, no
`python_model`), and `agent.py` registers a runnable with `mlflow.models.set_model(graph)`. There is no
agent class: the code step keeps the module and serves the runnable through
`agent_server/langchain_adapter.py`. These functions say so as analyze findings (`findings.add(code,
severity, path, message, fix)`).
"""

from __future__ import annotations

LOG_FROM_CODE = ("log the LangChain model from code (`mlflow.langchain.log_model(lc_model=\"agent.py\", ...)` with "
                 "`mlflow.models.set_model(graph)` at the end of agent.py), register and serve that version, then "
                 "download it again; or wrap the chain in a ResponsesAgent and log that")


def langchain_findings(findings, facts: dict, source) -> None:
    entry = facts["entry_file"]
    if entry is None or source is None or source.entry is None:
        findings.add("ANA051", "error", entry["path"] if entry else "MLmodel",
                     "not a python_function agent but a LangChain model (flavors.langchain) saved without its "
                     "source file: there is no agent class and no code to migrate",
                     LOG_FROM_CODE)
        return
    calls = source.search.set_model if source.search else []
    if not calls:
        findings.add("ANA052", "error", entry["path"],
                     "a LangChain model from code whose file calls no mlflow.models.set_model(...): the code step "
                     "cannot tell which runnable was served",
                     "end the original file with `mlflow.models.set_model(graph)` and log it again, or write "
                     "agent_server/agent.py by hand")
        return
    findings.add("ANA051", "info", entry["path"],
                 f"not a python_function agent class but a LangChain model from code: line {calls[-1].line} "
                 f"registers `{calls[-1].target}`; the code step keeps the module and serves that runnable "
                 "through Responses handlers (input items → {\"messages\": [...]}, the last AI message → the "
                 "output message item, streamed through the runnable's stream)",
                 "nothing to do before the code step; clients send {\"input\": [...]} instead of "
                 "{\"messages\": [...]}, and output keys other than the last AI message are not returned")


def factory_finding(findings, agent: dict) -> None:
    factory = agent["factory"]
    if factory["returns"] or agent["found_by"] != "factory":
        findings.add("ANA050", "info", agent["path"],
                     f"set_model registers what `{factory['expression']}` returns (line {factory['line']}), a "
                     f"{agent['name']}: the code step keeps that call to build the agent, in wrapper mode",
                     "nothing to do")
        return
    findings.add("ANA050", "warning", agent["path"],
                 f"set_model registers what `{factory['expression']}` returns (line {factory['line']}); its class "
                 "is not in the model's files, so the code step serves that object as it is (wrapper mode: "
                 "AGENT.predict, and streams of predict's finished items)",
                 "check that the object is a ResponsesAgent (predict(request) → ResponsesAgentResponse); if it "
                 "streams, point the @stream handler of agent_server/agent.py at its predict_stream")
