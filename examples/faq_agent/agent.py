"""An FAQ agent written the Model Serving way, with its state built in `__init__`.

`__init__` reads the model config, loads the FAQ artifact into a keyword index, opens one HTTP client and
starts an empty per-conversation memory; every request then reads or writes that state. The LLM is called
with plain httpx on the endpoint's `/invocations` route, and `predict` and `predict_stream` each make their
own call, as agents written without a framework often do.
"""

import json
import re
import threading
import uuid
from pathlib import Path
from typing import Generator

import httpx
import mlflow
from databricks.sdk import WorkspaceClient
from mlflow.models import ModelConfig
from mlflow.pyfunc import ResponsesAgent
from mlflow.types.responses import ResponsesAgentRequest, ResponsesAgentResponse, ResponsesAgentStreamEvent

# Model Serving loads this file from the model's folder, where MLflow put the `faq` artifact.
FAQ_PATH = Path(__file__).parent / "artifacts" / "faq.json"


def words(text: str) -> set[str]:
    return {word for word in re.findall(r"[a-z]+", text.lower()) if len(word) > 2}


class FaqAgent(ResponsesAgent):
    def __init__(self, faq_path: Path):
        # Logged with model_config=config.yml: MLmodel's copy wins when served, the file is for notebooks.
        self.config = ModelConfig(development_config="config.yml").to_dict()
        self.faq = {entry["id"]: entry for entry in json.loads(faq_path.read_text())}
        # Built once: the FAQ is small and fixed for a model version, searching it per request is not.
        self.index: dict[str, set[str]] = {}
        for entry in self.faq.values():
            for word in words(entry["question"] + " " + entry["answer"]):
                self.index.setdefault(word, set()).add(entry["id"])
        self.workspace = WorkspaceClient()
        self.http = httpx.Client(base_url=self.workspace.config.host, timeout=self.config["timeout_seconds"])
        # Earlier turns per conversation; Model Serving runs requests on several threads at once.
        self.memory: dict[str, list[dict]] = {}
        self.memory_lock = threading.Lock()

    def search(self, question: str) -> list[dict]:
        hits: dict[str, int] = {}
        for word in words(question):
            for entry_id in self.index.get(word, ()):
                hits[entry_id] = hits.get(entry_id, 0) + 1
        best = sorted(hits, key=lambda entry_id: (-hits[entry_id], entry_id))[: self.config["top_k"]]
        return [self.faq[entry_id] for entry_id in best]

    def prepare(self, request: ResponsesAgentRequest) -> tuple[str, list[dict], list[dict]]:
        """The conversation's id, the messages for the LLM and the FAQ entries they quote."""
        thread_id = (request.custom_inputs or {}).get("thread_id") or "default"
        turns = self.prep_msgs_for_cc_llm([item.model_dump() for item in request.input])
        question = next((turn["content"] for turn in reversed(turns) if turn["role"] == "user"), "")
        entries = self.search(str(question))
        context = "\n".join(f"Q: {entry['question']}\nA: {entry['answer']}" for entry in entries)
        with self.memory_lock:
            earlier = list(self.memory.get(thread_id, []))
        system = {"role": "system", "content": f"{self.config['system_prompt']}\n\nFAQ:\n{context or 'none'}"}
        return thread_id, [system, *earlier, *turns], entries

    def remember(self, thread_id: str, messages: list[dict], answer: str) -> None:
        turn = [messages[-1], {"role": "assistant", "content": answer}]
        with self.memory_lock:
            kept = self.memory.get(thread_id, []) + turn
            self.memory[thread_id] = kept[-2 * self.config["memory_turns"]:]

    def invocations_url(self) -> str:
        return f"/serving-endpoints/{self.config['llm_endpoint']}/invocations"

    def predict(self, request: ResponsesAgentRequest) -> ResponsesAgentResponse:
        thread_id, messages, entries = self.prepare(request)
        # authenticate() per call: the token Model Serving injects is refreshed while the endpoint runs.
        response = self.http.post(self.invocations_url(), headers=self.workspace.config.authenticate(),
                                  json={"messages": messages})
        response.raise_for_status()
        answer = response.json()["choices"][0]["message"]["content"]
        self.remember(thread_id, messages, answer)
        return ResponsesAgentResponse(
            output=[self.create_text_output_item(text=answer, id=str(uuid.uuid4()))],
            custom_outputs={"thread_id": thread_id, "faq_ids": [entry["id"] for entry in entries]},
        )

    def predict_stream(self, request: ResponsesAgentRequest) -> Generator[ResponsesAgentStreamEvent, None, None]:
        thread_id, messages, _ = self.prepare(request)
        item_id, pieces = str(uuid.uuid4()), []
        with self.http.stream("POST", self.invocations_url(), headers=self.workspace.config.authenticate(),
                              json={"messages": messages, "stream": True}) as response:
            response.raise_for_status()
            for line in response.iter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                delta = json.loads(line[len("data: "):])["choices"][0]["delta"].get("content")
                if delta:
                    pieces.append(delta)
                    yield ResponsesAgentStreamEvent(**self.create_text_delta(delta=delta, item_id=item_id))
        answer = "".join(pieces)
        self.remember(thread_id, messages, answer)
        yield ResponsesAgentStreamEvent(type="response.output_item.done",
                                        item=self.create_text_output_item(text=answer, id=item_id))


AGENT = FaqAgent(FAQ_PATH)
mlflow.models.set_model(AGENT)
