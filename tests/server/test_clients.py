"""Real OpenAI-compatible clients against a real `lorag serve`: langchain-openai and simonw's `llm` CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.server.conftest import LiveServer

QUESTION = "経費はいつまでに申請すればよいですか？"


@pytest.mark.slow
def test_langchain_invoke_returns_sources_and_usage(live: LiveServer) -> None:
    from langchain_openai import ChatOpenAI

    chat = ChatOpenAI(model="lorag-rag", base_url=f"{live.url}/v1", api_key=live.token, max_tokens=6, max_retries=0)
    message = chat.invoke(QUESTION)
    assert "出典 / Sources:" in str(message.content) and "経費精算規程.pdf" in str(message.content)
    assert message.usage_metadata is not None and message.usage_metadata["output_tokens"] > 0
    assert message.response_metadata["finish_reason"] in ("stop", "length")


@pytest.mark.slow
def test_langchain_stream_with_usage(live: LiveServer) -> None:
    from langchain_openai import ChatOpenAI

    chat = ChatOpenAI(model="lorag-rag", base_url=f"{live.url}/v1", api_key=live.token, max_tokens=6,
                      max_retries=0, stream_usage=True)
    chunks = list(chat.stream([("system", "短く答えてください。"), ("human", QUESTION)]))
    total = chunks[0]
    for chunk in chunks[1:]:
        total = total + chunk
    assert "経費精算規程.pdf" in str(total.content)
    assert total.usage_metadata is not None
    assert total.usage_metadata["output_tokens"] > 0 and total.usage_metadata["input_tokens"] > 100


def _llm(user_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LLM_USER_PATH": str(user_dir)}
    return subprocess.run([sys.executable, "-m", "llm", *args], capture_output=True, text=True, env=env,
                          timeout=600, check=False)


@pytest.fixture
def llm_dir(live: LiveServer, tmp_path: Path) -> Path:
    """An `llm` user dir declaring lorag's two models in extra-openai-models.yaml, with the token as a key."""
    models = "".join(f"- model_id: {model_id}\n  model_name: {name}\n  api_base: \"{live.url}/v1\"\n"
                     f"  api_key_name: lorag\n" for model_id, name in (("lorag", "lorag-rag"),
                                                                       ("lorag-plain", "gemma-3-270m")))
    (tmp_path / "extra-openai-models.yaml").write_text(models, encoding="utf-8")
    (tmp_path / "keys.json").write_text(json.dumps({"lorag": live.token}), encoding="utf-8")
    return tmp_path


@pytest.mark.slow
def test_llm_cli_streams_an_answer_with_sources_and_logs_usage(live: LiveServer, llm_dir: Path) -> None:
    done = _llm(llm_dir, "-m", "lorag", "-o", "max_tokens", "6", "-s", "丁寧に答えてください。", QUESTION)
    assert done.returncode == 0, done.stderr
    assert "出典 / Sources:" in done.stdout and "経費精算規程.pdf" in done.stdout
    logs = _llm(llm_dir, "logs", "-n", "1", "--json")
    [entry] = json.loads(logs.stdout)
    assert entry["model"] == "lorag" and entry["system"] == "丁寧に答えてください。"
    assert entry["input_tokens"] > 100 and entry["output_tokens"] > 0


@pytest.mark.slow
def test_llm_cli_continues_a_conversation(live: LiveServer, llm_dir: Path) -> None:
    first = _llm(llm_dir, "-m", "lorag", "-o", "max_tokens", "4", "有給休暇は何日もらえますか？")
    assert first.returncode == 0, first.stderr
    follow = _llm(llm_dir, "-c", "-o", "max_tokens", "4", "それは入社何か月後からですか？")
    assert follow.returncode == 0, follow.stderr
    assert "休暇制度.docx" in follow.stdout  # the follow-up was searched with the first question
    plain = _llm(llm_dir, "-m", "lorag-plain", "-o", "max_tokens", "3", "日本の首都は")
    assert plain.returncode == 0 and "出典" not in plain.stdout
