"""The official openai client against /v1 on a real uvicorn server: usage, finish reasons, refusals, follow-ups."""

from __future__ import annotations

import json

import openai
import pytest

from tests.server.conftest import LiveServer
from tests.server.recording import recording

QUESTION = "経費はいつまでに申請すればよいですか？"


def client_for(live: LiveServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{live.url}/v1", api_key=live.token, max_retries=0, timeout=600)


def test_models_lists_rag_and_configured_model(live: LiveServer) -> None:
    ids = [m.id for m in client_for(live).models.list()]
    assert ids == ["lorag-rag", "gemma-3-270m"]


@pytest.mark.slow
def test_rag_model_streams_with_sources_and_a_final_usage_chunk(live: LiveServer) -> None:
    stream = client_for(live).chat.completions.create(
        model="lorag-rag", messages=[{"role": "user", "content": QUESTION}], stream=True, max_tokens=8,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    *_, finish, last = chunks
    assert finish.choices[0].finish_reason in ("stop", "length") and finish.usage is None
    assert last.choices == [] and last.usage is not None
    assert 0 < last.usage.completion_tokens <= 8 and last.usage.prompt_tokens > 100
    assert last.usage.total_tokens == last.usage.prompt_tokens + last.usage.completion_tokens
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "出典 / Sources:\n[" in text and "経費精算規程.pdf" in text
    assert len({c.id for c in chunks}) == 1


@pytest.mark.slow
def test_without_include_usage_no_usage_chunk_is_sent(live: LiveServer) -> None:
    chunks = list(client_for(live).chat.completions.create(
        model="gemma-3-270m", messages=[{"role": "user", "content": "日本の首都は"}], stream=True, max_tokens=2))
    assert all(c.choices and c.usage is None for c in chunks)


@pytest.mark.slow
def test_plain_model_answers_without_retrieval_and_reports_length(live: LiveServer) -> None:
    reply = client_for(live).chat.completions.create(
        model="gemma-3-270m", messages=[{"role": "user", "content": "1, 2, 3, 4, 5,"}], max_tokens=3,
    )
    assert reply.object == "chat.completion"
    assert reply.choices[0].message.role == "assistant"
    assert reply.choices[0].message.content and "出典" not in reply.choices[0].message.content
    assert reply.usage is not None and reply.usage.completion_tokens == 3
    assert reply.choices[0].finish_reason == "length"


@pytest.mark.slow
def test_rag_model_whole_reply_carries_usage_and_cited_first_sources(live: LiveServer) -> None:
    from lorag.server.routes.openai import sources_text

    with live.client(auth=False) as http:
        body = http.post("/v1/chat/completions", json={
            "model": "lorag-rag", "max_tokens": 6, "messages": [{"role": "user", "content": QUESTION}]}).json()
    citations = body["citations"]
    assert citations[0]["name"] == "経費精算規程.pdf"
    assert body["choices"][0]["message"]["content"].endswith(sources_text(citations))
    assert body["usage"]["completion_tokens"] > 0
    assert body["choices"][0]["finish_reason"] in ("stop", "length")
    cited = [c["cited"] for c in citations]
    assert cited == sorted(cited, reverse=True)  # the cited ones, if any, come first


def test_sources_text_marks_the_cited_sources_and_shows_printed_pages() -> None:
    from lorag.server.routes.openai import sources_text

    citations = [{"n": 2, "source": "/d/出張.pdf", "name": "出張.pdf", "page": 58, "page_label": "30", "cited": True},
                 {"n": 1, "source": "/d/休暇.docx", "name": "休暇.docx", "page": None, "cited": False}]
    assert sources_text(citations) == "\n\n出典 / Sources:\n[2] 出張.pdf p. 30 (PDF page 58) ✓\n[1] 休暇.docx"
    assert sources_text([]) == ""


@pytest.mark.slow
def test_the_system_message_and_the_conversation_reach_the_rag_prompt(live: LiveServer) -> None:
    with recording(live) as gen:
        client_for(live).chat.completions.create(model="lorag-rag", max_tokens=2, messages=[
            {"role": "system", "content": "箇条書きで答えてください。"},
            {"role": "user", "content": "有給休暇は何日もらえますか？"},
            {"role": "assistant", "content": "入社6か月後に10日です。"},
            {"role": "user", "content": "それは入社何か月後からですか？"},
        ], extra_body={"logit_bias": {}, "user": "someone", "frequency_penalty": 0})  # unknown fields: ignored
    prompt = gen.requests[-1].prompt
    assert prompt is not None and "箇条書きで答えてください。" in prompt
    assert "これまでの会話：\n質問：有給休暇は何日もらえますか？\n答え：入社6か月後に10日です。" in prompt
    assert "休暇制度.docx" in prompt  # the follow-up found the leave policy through the conversation
    assert prompt.endswith("質問：それは入社何か月後からですか？\n答え：")


@pytest.mark.parametrize(("extra", "param", "words"), [
    ({"n": 2}, "n", "n=2 is not supported"),
    ({"messages": [{"role": "user", "content": [
        {"type": "text", "text": "この画像は？"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}]},
     "messages[0].content[1].type", "'image_url': lorag's models read text only"),
    ({"messages": [{"role": "user", "content": "天気は？"}, {"role": "tool", "content": "{}", "tool_call_id": "x"}]},
     "messages[1].role", "role 'tool'"),
    ({"messages": [{"role": "user", "content": "あ" * 4001}]}, "messages", "the limit is 4,000"),
])
def test_what_lorag_cannot_honour_is_a_400_in_openai_shape(live: LiveServer, extra: dict[str, object],
                                                           param: str, words: str) -> None:
    body = {"model": "lorag-rag", "messages": [{"role": "user", "content": QUESTION}], **extra}
    with live.client(auth=False) as http:
        reply = http.post("/v1/chat/completions", json=body)
    assert reply.status_code == 400
    error = reply.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param
    assert words in error["message"]


def test_the_official_client_raises_bad_request_for_n_2(live: LiveServer) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client_for(live).chat.completions.create(model="lorag-rag", n=2,
                                                 messages=[{"role": "user", "content": QUESTION}])
    assert "n=2 is not supported" in str(caught.value)


@pytest.mark.parametrize("body", [
    {"model": "lorag-rag", "messages": [{"role": "user", "content": []}]},
    {"model": "lorag-rag", "messages": [{"role": "user", "content": QUESTION}], "stream": True,
     "stream_options": "include_usage"},
    {"model": "lorag-rag", "messages": [{"role": "user", "content": QUESTION}], "stream": True,
     "stream_options": {"include_usage": "sometimes"}},
    {"model": "lorag-rag", "messages": []},
])
def test_malformed_requests_are_400_never_5xx(live: LiveServer, body: dict[str, object]) -> None:
    with live.client(auth=False) as http:
        reply = http.post("/v1/chat/completions", json=body)
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"]["type"] == "invalid_request_error"


@pytest.mark.slow
def test_a_200_turn_1_mb_conversation_is_cut_from_the_oldest_turns(live: LiveServer) -> None:
    filler = "社員食堂のメニューについての長い雑談です。" * 250  # about 5,000 characters a turn
    messages = [{"role": "user" if i % 2 == 0 else "assistant", "content": f"{i}: {filler}"} for i in range(199)]
    messages.append({"role": "user", "content": QUESTION})
    assert len(json.dumps(messages, ensure_ascii=False).encode()) > 1_000_000
    for model in ("lorag-rag", "gemma-3-270m"):
        with live.client(auth=False) as http:
            reply = http.post("/v1/chat/completions", json={"model": model, "max_tokens": 2, "messages": messages})
        assert reply.status_code == 200, reply.text
        assert reply.json()["usage"]["prompt_tokens"] < live.state.config.settings.llm.context


def test_unknown_model_is_404(live: LiveServer) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client_for(live).chat.completions.create(model="gpt-9", messages=[{"role": "user", "content": "hi"}])
    assert "model 'gpt-9' not found" in str(caught.value)


def test_each_collection_gets_a_model_id_when_there_are_several(bare: LiveServer) -> None:
    from lorag.rag.store import NewChunk, Store

    with Store(bare.state.config.store_path) as store:
        for path, collection in (("/docs/休暇.txt", "default"), ("/docs/規程.txt", "hr")):
            chunk = NewChunk("有給休暇は10日です。", None, 0, 10, ["有給", "休暇"])
            store.replace_document(path, path, 0.0, 1, [chunk], collection=collection)
    ids = [m.id for m in client_for(bare).models.list()]
    assert ids == ["lorag-rag", "lorag-rag:default", "lorag-rag:hr", "gemma-3-270m"]
    with pytest.raises(openai.NotFoundError) as caught:
        client_for(bare).chat.completions.create(model="lorag-rag:finance",
                                                 messages=[{"role": "user", "content": "経費は？"}])
    assert "lorag-rag:hr" in str(caught.value)
