"""Drive a running Open WebUI, set up as README's "Use lorag from Open WebUI", against a running `lorag serve`.

Asks a question, then a follow-up sent right after Open WebUI's own title task, and prints each answer, its time
and which model answered the task. Usage: python bench/openwebui_session.py [OPEN_WEBUI_URL]
(with WEBUI_AUTH=False, Open WebUI signs everyone in as its local admin).
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

import httpx

BASE = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:3000"
QUESTION = "有給休暇は何日もらえますか？"
FOLLOW_UP = "それは入社何か月後からですか？"


def post(headers: dict[str, str], path: str, body: dict[str, Any]) -> tuple[float, int, dict[str, Any]]:
    start = time.perf_counter()
    reply = httpx.post(f"{BASE}{path}", headers=headers, json=body, timeout=600)
    return time.perf_counter() - start, reply.status_code, reply.json()


def main() -> None:
    signin = {"email": "admin@localhost", "password": "admin"}
    token = httpx.post(f"{BASE}/api/v1/auths/signin", json=signin, timeout=30).json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    first = [{"role": "user", "content": QUESTION}]
    seconds, status, body = post(headers, "/api/chat/completions", {"model": "lorag-rag", "messages": first})
    answer = body["choices"][0]["message"]["content"]
    print(f"question   {status} {seconds:5.1f} s  {answer[:300]!r}")
    conversation = [*first, {"role": "assistant", "content": answer}, {"role": "user", "content": FOLLOW_UP}]
    task: dict[str, Any] = {}

    def title() -> None:
        body = {"model": "lorag-rag", "messages": conversation, "chat_id": "local"}
        task["reply"] = post(headers, "/api/v1/tasks/title/completions", body)

    thread = threading.Thread(target=title)
    thread.start()
    time.sleep(0.3)  # the title task reaches lorag first, as Open WebUI sends it
    seconds, status, body = post(headers, "/api/chat/completions", {"model": "lorag-rag", "messages": conversation})
    print(f"follow-up  {status} {seconds:5.1f} s  {body['choices'][0]['message']['content'][:400]!r}")
    thread.join()
    seconds, status, body = task["reply"]
    print(f"title task {status} {seconds:5.1f} s  model {body.get('model')!r}: "
          f"{body['choices'][0]['message']['content'][:100]!r}")


if __name__ == "__main__":
    main()
