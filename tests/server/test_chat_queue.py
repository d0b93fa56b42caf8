"""Chat clients under load on a real server: Open WebUI's tasks behind questions, disconnects, 20 parallel chats."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import httpx
import pytest

from lorag.server.client_tasks import client_task
from tests.server.conftest import LiveServer
from tests.server.openwebui_tasks import TEMPLATES, task_request
from tests.server.recording import recording

COUNTING = [{"role": "user", "content": "1, 2, 3, 4, 5, 6, 7, 8, 9, 10,"}]


@pytest.mark.parametrize("kind", sorted(TEMPLATES))
def test_open_webui_task_prompts_are_recognised(kind: str) -> None:
    assert client_task(task_request(kind)["messages"]) == kind


def test_questions_and_other_prompts_are_not_tasks() -> None:
    assert client_task([{"role": "user", "content": "有給休暇は何日もらえますか？"}]) is None
    assert client_task([{"role": "user", "content": "タイトルを考えて: ### Task: は見出しです"}]) is None
    legacy = "Here is the query:\n有給休暇\nCreate a concise, 3-5 word phrase as a title for the previous query."
    assert client_task([{"role": "user", "content": legacy}]) == "title"
    assert client_task([{"role": "user", "content": "x"}], {"task": "title_generation"}) == "title"


def _wait_for(condition: Any, what: str) -> None:
    deadline = time.monotonic() + 120
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.02)


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(TEMPLATES))
def test_open_webui_tasks_run_on_the_plain_model_without_retrieval(live: LiveServer, kind: str) -> None:
    with recording(live) as gen, live.client(auth=False) as http:
        reply = http.post("/v1/chat/completions", json=task_request(kind, max_tokens=4))
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert "citations" not in body and "出典" not in body["choices"][0]["message"]["content"]
    [request] = gen.requests
    assert request.prompt is not None and "資料" not in request.prompt and "<chat_history>" in request.prompt
    assert request.max_tokens == 4


@pytest.mark.slow
def test_a_task_sent_first_never_delays_the_question_behind_it(live: LiveServer) -> None:
    finished: list[str] = []

    def post(name: str, body: dict[str, Any]) -> None:
        with live.client(auth=False) as http:
            assert http.post("/v1/chat/completions", json=body).status_code == 200
        finished.append(name)

    gate = live.state.gate
    # Streamed, so it cannot start over: the question waits for it, the queued title waits for the question.
    busy = threading.Thread(target=post, args=("busy", {"model": "gemma-3-270m", "messages": COUNTING,
                                                        "max_tokens": 60, "stream": True}))
    busy.start()
    _wait_for(lambda: gate.stats()["running"] == 1, "the model to be busy")
    task = threading.Thread(target=post, args=("title", task_request("title", max_tokens=4)))
    task.start()
    _wait_for(lambda: gate.stats()["waiting_tasks"] == 1, "the title task to queue")
    question = threading.Thread(target=post, args=("question", {
        "model": "lorag-rag", "max_tokens": 4, "messages": [{"role": "user", "content": "給与は毎月何日ですか？"}]}))
    question.start()
    for thread in (busy, task, question):
        thread.join(300)
    assert finished == ["busy", "question", "title"]


@pytest.mark.slow
def test_a_client_that_leaves_mid_stream_stops_the_generation(live: LiveServer) -> None:
    body = {"model": "gemma-3-270m", "stream": True, "max_tokens": 400, "messages": COUNTING}
    with recording(live) as gen:
        with live.client(auth=False) as http, http.stream("POST", "/v1/chat/completions", json=body) as reply:
            first_text = next(line for line in reply.iter_lines() if '"content": "' in line and '""' not in line)
            assert first_text.startswith("data: ")
        _wait_for(lambda: live.state.gate.stats()["running"] == 0, "the model to stop")
        produced = gen.pieces
        with live.client(auth=False) as http:
            after = http.post("/v1/chat/completions", json={**body, "stream": False, "max_tokens": 2})
    assert after.status_code == 200  # the queue moved on
    assert produced < 100  # of 400 allowed: generation stopped soon after the client left


@pytest.mark.slow
def test_twenty_concurrent_chats_with_follow_ups_are_all_answered(live: LiveServer) -> None:
    questions = [("有給休暇は何日もらえますか？", "それは入社何か月後からですか？"),
                 ("経費はいつまでに申請すればよいですか？", "期限を過ぎたらどうなりますか？"),
                 ("テレワークは週何日までできますか？", "申請の締め切りはいつですか？"),
                 ("給与は毎月何日に支払われますか？", "その日が休みならどうなりますか？")]

    async def chat(client: httpx.AsyncClient, i: int) -> list[int]:
        first, follow_up = questions[i % len(questions)]
        messages = [{"role": "user", "content": first}]
        statuses, answer = [], ""
        for follow in (None, follow_up):
            if follow is not None:
                messages += [{"role": "assistant", "content": answer}, {"role": "user", "content": follow}]
            reply = await client.post("/v1/chat/completions",
                                      json={"model": "lorag-rag", "max_tokens": 1, "messages": messages})
            statuses.append(reply.status_code)
            answer = reply.json()["choices"][0]["message"]["content"] if reply.status_code == 200 else ""
        return statuses

    async def main() -> list[list[int]]:
        async with httpx.AsyncClient(base_url=live.url, timeout=900) as client:
            return list(await asyncio.gather(*(chat(client, i) for i in range(20))))

    assert asyncio.run(main()) == [[200, 200]] * 20
    assert live.state.gate.stats()["waiting"] == 0
