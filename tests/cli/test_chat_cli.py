"""`lorag chat` in a subprocess: a follow-up is answered from the conversation, /new starts over."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "examples" / "corpus"


def lorag_chat(stdin: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LORAG_")}
    env.update(HF_HUB_OFFLINE="1", COLUMNS="200", PYTHONPATH=str(ROOT))  # this checkout's lorag
    return subprocess.run([sys.executable, "-m", "lorag", "chat", "-k", "2"], cwd=cwd, env=env, input=stdin,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from lorag.config import init_config, load_config, update_config
    from lorag.rag.ingest import ingest_paths

    root = tmp_path_factory.mktemp("chat-cli")
    for name in ("休暇制度.docx", "新入社員オンボーディング.docx", "経費精算規程.pdf"):
        shutil.copy(CORPUS / name, root / name)
    config = init_config(root / "lorag.yaml")
    update_config(config, {"llm.max_tokens": 4})
    assert ingest_paths(load_config(config), [root]).ok
    return root


@pytest.mark.slow
def test_a_follow_up_is_searched_with_the_earlier_question(project: Path) -> None:
    done = lorag_chat("有給休暇は何日もらえますか？\nそれは入社何か月後からですか？\n\n", project)
    assert done.returncode == 0, done.stderr
    answers = done.stdout.split("質問> ")[1:]
    assert len(answers) == 3  # two answers, then the empty line that quits
    assert "休暇制度.docx" in answers[1].split("出典:")[1]  # the follow-up found the leave policy


@pytest.mark.slow
def test_new_forgets_the_conversation_and_long_questions_are_one_error_line(project: Path) -> None:
    done = lorag_chat("有給休暇は何日もらえますか？\n/new\n" + "あ" * 4001 + "\n", project)
    assert "新しい会話" in done.stdout
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "the limit is 4,000" in done.stderr
