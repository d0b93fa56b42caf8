"""The web page in real headless Chromium: a cited, streamed answer, an upload, and a build watched to the end."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.server.conftest import LiveServer, make_project, start_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
QUESTION = "経費はいつまでに申請すればよいですか？"


@pytest.fixture(scope="module")
def page_server(tmp_path_factory: pytest.TempPathFactory, ingested_project: Path, tiny_qwen2: Path,
                tiny_qwen2_adapter: Path) -> Iterator[LiveServer]:
    """Its own project (a build will switch its model), reading the session's ingested store."""
    from lorag.config import load_config

    store = load_config(ingested_project).store_path
    roots = tmp_path_factory.mktemp("browser-models")
    shutil.copytree(tiny_qwen2_adapter, roots / "lora-tiny-qwen2")
    project = make_project(tmp_path_factory.mktemp("browser") / "p",
                           **{"store.path": str(store), "models.roots": [str(roots), str(tiny_qwen2.parent)]})
    server = start_server(project)
    yield server
    server.stop()


@pytest.fixture
def page(page_server: LiveServer) -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        tab = browser.new_page(viewport={"width": 1280, "height": 900}, locale="ja-JP")
        tab.goto(f"{page_server.url}/#token={page_server.token}")
        yield tab
        browser.close()


def screenshot(tab: Any, name: str, tmp_path: Path) -> None:
    folder = Path(os.environ.get("LORAG_SCREENSHOTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def test_token_moves_from_the_url_to_local_storage(page: Any, page_server: LiveServer) -> None:
    assert "#token" not in page.url
    assert page.evaluate("localStorage.getItem('lorag-token')") == page_server.token


def test_question_gets_a_streamed_cited_answer(page: Any, tmp_path: Path) -> None:
    page.fill("#question", QUESTION)
    page.click("#ask-button")
    page.wait_for_selector(".msg.bot[data-done='1']", timeout=600_000)
    answer = page.inner_text(".msg.bot .answer")
    assert answer.strip() and "エラー" not in answer
    chips = page.locator(".msg.bot .chip")
    assert chips.count() == 2
    assert "経費精算規程.pdf" in chips.first.inner_text()
    chips.first.click()
    assert page.is_visible("#source-panel")
    assert "翌月10日" in page.inner_text("#source-text")
    screenshot(page, "chat", tmp_path)
    assert page.inner_text(".msg.bot .source-chips").startswith("出典:")
    page.click("#lang-toggle")
    assert page.inner_text("[data-tab=chat]") == "Chat"
    assert page.inner_text(".msg.bot .source-chips").startswith("Sources:")  # what was on screen is redrawn
    page.click("#lang-toggle")
    assert page.inner_text("[data-tab=chat]") == "チャット"
    assert page.inner_text(".msg.bot .source-chips").startswith("出典:")


def test_a_follow_up_in_the_page_is_answered_from_the_conversation(page: Any, page_server: LiveServer) -> None:
    for question in ("有給休暇は何日もらえますか？", "それは入社何か月後からですか？"):
        done = page.locator(".msg.bot[data-done='1']").count()
        page.fill("#question", question)
        page.click("#ask-button")
        page.locator(".msg.bot[data-done='1']").nth(done).wait_for(timeout=600_000)
    assert "休暇制度.docx" in page.locator(".msg.bot .source-chips").last.inner_text()
    page.click("#new-chat")
    assert page.locator(".msg").count() == 0 and page.evaluate("conversation.length") == 0


def test_server_errors_are_shown_in_japanese_and_follow_the_language(page: Any, tmp_path: Path) -> None:
    page.click("[data-tab=models]")
    page.fill("#lora-path", str(tmp_path / "elsewhere" / "lora"))
    page.click("#build-button")
    page.wait_for_selector("#toast.error:not([hidden])")
    toast = page.inner_text("#toast")
    assert "models.roots（" in toast and "の外にあります" in toast
    page.click("#lang-toggle")
    assert "outside models.roots" in page.inner_text("#toast")
    page.click("#lang-toggle")


def test_the_plan_is_worded_in_the_pages_language(page: Any) -> None:
    page.click("[data-tab=models]")
    page.wait_for_selector("#plan-rows tr")
    reason = page.inner_text("#plan-reason")
    assert "必要" in reason and "fits" not in reason and "needs" not in reason, reason
    rows = page.inner_text("#plan-rows")
    assert "on the CPU" not in rows and "fully on the GPU" not in rows and "（CPU）" in rows, rows
    page.click("#lang-toggle")
    page.wait_for_selector("#plan-reason:has-text('needs')")
    page.click("#lang-toggle")


def test_an_empty_upload_names_the_users_file(page: Any, tmp_path: Path) -> None:
    empty = tmp_path / "空のメモ.txt"
    empty.write_bytes(b"")
    page.click("[data-tab=documents]")
    page.set_input_files("#upload-files", str(empty))
    page.click("#upload-form button[type=submit]")
    page.wait_for_selector("#upload-status:has-text('エラー')", timeout=300_000)
    status = page.inner_text("#upload-status")
    assert status.startswith("エラー: 取り込めたファイルはありません：空のメモ.txt")
    assert "uploads" not in status and ".lorag" not in status


def test_upload_shows_the_document(page: Any, tmp_path: Path) -> None:
    note = tmp_path / "社内報.md"
    note.write_text("# 社内報\n社員食堂のカレーは毎週金曜日です。\n", encoding="utf-8")
    page.click("[data-tab=documents]")
    page.set_input_files("#upload-files", str(note))
    page.click("#upload-form button[type=submit]")
    page.wait_for_selector("#doc-rows td:text('社内報.md')", timeout=300_000)
    assert page.inner_text("#upload-status").startswith("取り込みました")
    screenshot(page, "documents", tmp_path)
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("#doc-rows tr", has_text="社内報.md").locator("[data-act=delete]").click()
    page.wait_for_selector("#doc-rows td:text('社内報.md')", state="detached")


def test_build_progress_reaches_done(page: Any, page_server: LiveServer, tmp_path: Path) -> None:
    roots = page_server.state.config.settings.models.roots
    page.click("[data-tab=models]")
    page.wait_for_selector("#plan-rows tr", timeout=300_000)  # reading the 250 MB GGUF is slow on a busy machine
    page.fill("#lora-path", str(Path(roots[0]) / "lora-tiny-qwen2"))
    page.select_option("#quantization", "Q8_0")
    assert page.is_checked("#switch-config")  # switching the config is the default
    page.click("#build-button")
    page.wait_for_selector("#build-progress[data-status=running], #build-progress[data-status=succeeded]")
    page.wait_for_selector("#job-rows .badge.running, #job-rows .badge.succeeded")  # the row follows live
    page.wait_for_selector("#build-progress[data-status=succeeded]", timeout=600_000)
    page.wait_for_selector("#job-rows .badge.succeeded")
    percents = page.locator("#stage-list .pct").all_inner_texts()
    assert percents == ["100%"] * 6 + ["スキップ", "100%"]  # nothing was registered: Ollama is not running
    assert "登録（スキップ：Ollama に接続できません）" in page.inner_text("#stage-list li[data-stage=register]")
    result = page.inner_text("#build-result")
    assert "KL" in result and "Q8_0" in result and "設定を新しいモデルに切り替えました" in result
    assert "スキップ：Ollama に接続できません" in result
    assert "MB" in result and "MiB" not in result
    screenshot(page, "models", tmp_path)
    switched = page_server.state.config.settings.llm.model
    page.uncheck("#switch-config")
    page.select_option("#quantization", "Q8_0")
    page.click("#build-button")
    page.wait_for_selector("#build-result p.muted:text('設定は変更していません')", timeout=600_000)
    assert page_server.state.config.settings.llm.model == switched


def test_auto_build_shows_the_route_choice(page: Any, page_server: LiveServer, tmp_path: Path) -> None:
    roots = page_server.state.config.settings.models.roots
    page.click("[data-tab=models]")
    page.fill("#lora-path", str(Path(roots[0]) / "lora-tiny-qwen2"))
    page.select_option("#quantization", "Q8_0")
    page.select_option("#mode", "auto")
    page.uncheck("#switch-config")
    page.click("#build-button")
    page.wait_for_selector("#build-result table.route-choice", timeout=900_000)
    rows = page.locator("#build-result table.route-choice tbody tr")
    assert rows.count() == 2
    assert page.locator("#build-result table.route-choice tr.chosen").count() == 1
    result = page.inner_text("#build-result")
    assert "候補の比較" in result and "挙動の一致率（貪欲生成）" in result and "完全一致した回答" in result
    assert "汎用の組み込みプロンプト" in result  # the tiny adapter has no evaluation lines of its own
    screenshot(page, "models-route-choice", tmp_path)
