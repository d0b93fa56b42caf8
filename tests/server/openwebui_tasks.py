"""Open WebUI's background task requests, rebuilt from its documented default prompt templates.

Open WebUI (backend/open_webui/config.py, ``DEFAULT_*_PROMPT_TEMPLATE``) fills ``{{MESSAGES:END:n}}`` with the
last turns as ``USER: …`` / ``ASSISTANT: …`` lines and sends the whole prompt as one user message to the
chat's model (or the task model). The instructions below are abridged; the shape (``### Task:`` first,
the JSON key asked for, ``<chat_history>``) is what lorag recognises.
"""

from __future__ import annotations

from typing import Any

HISTORY = ("USER: 有給休暇は何日もらえますか？\n"
           "ASSISTANT: 入社日から6か月後に10日の年次有給休暇が付与されます。[1]")

TEMPLATES = {
    "title": ("### Task:\nGenerate a concise, 3-5 word title with an emoji summarizing the chat history.\n"
              "### Guidelines:\n- The title should clearly represent the main theme or subject of the conversation.\n"
              "- Write the title in the chat's primary language; default to English if multilingual.\n"
              "### Output:\nJSON format: { \"title\": \"your concise title here\" }\n"
              "### Chat History:\n<chat_history>\n{history}\n</chat_history>"),
    "tags": ("### Task:\nGenerate 1-3 broad tags categorizing the main themes of the chat history, along with 1-3 "
             "more specific subtopic tags.\n### Output:\nJSON format: { \"tags\": [\"tag1\", \"tag2\", \"tag3\"] }\n"
             "### Chat History:\n<chat_history>\n{history}\n</chat_history>"),
    "follow_ups": ("### Task:\nSuggest 3-5 relevant follow-up questions or prompts that the user might naturally ask "
                   "next in this conversation as a **user**, based on the chat history.\n### Output:\n"
                   "JSON format: { \"follow_ups\": [\"Question 1?\", \"Question 2?\", \"Question 3?\"] }\n"
                   "### Chat History:\n<chat_history>\n{history}\n</chat_history>"),
    "queries": ("### Task:\nAnalyze the chat history to determine the necessity of generating search queries, in the "
                "given language.\n### Guidelines:\n- Respond **EXCLUSIVELY** with a JSON object.\n"
                "- When generating search queries, respond in the format: { \"queries\": [\"query1\", \"query2\"] }\n"
                "### Chat History:\n<chat_history>\n{history}\n</chat_history>"),
}


def task_request(kind: str, model: str = "lorag-rag", **extra: Any) -> dict[str, Any]:
    """The chat completion body Open WebUI sends for one task."""
    content = TEMPLATES[kind].replace("{history}", HISTORY)
    return {"model": model, "messages": [{"role": "user", "content": content}], "stream": False, **extra}
