"""The official openai client against /v1 on a real uvicorn server."""

from __future__ import annotations

import json

import openai
import pytest

from tests.server.conftest import LiveServer

QUESTION = "経費はいつまでに申請すればよいですか？"


def client_for(live: LiveServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{live.url}/v1", api_key=live.token, max_retries=0, timeout=600)


def test_models_lists_rag_and_configured_model(live: LiveServer) -> None:
    ids = [m.id for m in client_for(live).models.list()]
    assert ids == ["lorag-rag", "gemma-3-270m"]


@pytest.mark.slow
def test_rag_model_streams_with_sources(live: LiveServer) -> None:
    stream = client_for(live).chat.completions.create(
        model="lorag-rag", messages=[{"role": "user", "content": QUESTION}], stream=True, max_tokens=8,
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices[0].finish_reason == "stop"
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert "出典 / Sources:\n[1] " in text
    assert "経費精算規程.pdf" in text
    assert len({c.id for c in chunks}) == 1


@pytest.mark.slow
def test_plain_model_answers_without_retrieval(live: LiveServer) -> None:
    reply = client_for(live).chat.completions.create(
        model="gemma-3-270m", messages=[{"role": "user", "content": "日本の首都は"}], max_tokens=6,
    )
    assert reply.object == "chat.completion"
    assert reply.choices[0].message.role == "assistant"
    assert reply.choices[0].message.content
    assert "出典" not in reply.choices[0].message.content
    assert reply.usage is not None and 0 < reply.usage.completion_tokens <= 6


@pytest.mark.slow
def test_rag_model_whole_reply_carries_citations(live: LiveServer) -> None:
    from lorag.server.routes.openai import sources_text

    with live.client(auth=False) as http:
        body = http.post("/v1/chat/completions", json={
            "model": "lorag-rag", "max_tokens": 6, "messages": [{"role": "user", "content": QUESTION}]}).json()
    citations = body["citations"]
    assert citations[0]["name"] == "経費精算規程.pdf"
    assert body["choices"][0]["message"]["content"].endswith(sources_text(citations))
    assert sources_text(citations).endswith("[1] 経費精算規程.pdf (p.1)\n[2] " + citations[1]["name"]
                                            + (f" (p.{citations[1]['page']})" if citations[1]["page"] else ""))


@pytest.mark.slow
def test_raw_stream_ends_with_done(live: LiveServer) -> None:
    messages = [{"role": "user", "content": "こんにちは"}]
    with live.client(auth=False) as http:
        reply = http.post("/v1/chat/completions",
                          json={"model": "gemma-3-270m", "stream": True, "max_tokens": 3, "messages": messages})
    frames = [frame for frame in reply.text.split("\n\n") if frame]
    assert frames[-1] == "data: [DONE]"
    chunks = [json.loads(frame.removeprefix("data: ")) for frame in frames[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_unknown_model_is_404(live: LiveServer) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client_for(live).chat.completions.create(model="gpt-9", messages=[{"role": "user", "content": "hi"}])
    assert "model 'gpt-9' not found" in str(caught.value)


def test_rag_model_needs_a_user_message(live: LiveServer) -> None:
    with pytest.raises(openai.BadRequestError):
        client_for(live).chat.completions.create(model="lorag-rag", messages=[{"role": "system", "content": "x"}])
