.PHONY: demo demo-rag test install install-dev lint bench

PY := .venv/bin/python

demo: install  ## install, ingest the sample corpus, build the bundled LoRA, answer with citations (base vs fine-tune)
	$(PY) examples/demo_finetune.py

demo-rag: install  ## RAG only: ingest the sample corpus and answer one question with the bundled model
	$(PY) -m lorag.demo

test: install-dev  ## install, then run the whole test suite
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(PY) -m pytest -q

install:
	@bash scripts/install.sh

install-dev:
	@bash scripts/install.sh --dev

lint: install-dev
	$(PY) -m ruff check lorag tests bench scripts
	$(PY) -m mypy lorag

bench: install-dev
	$(PY) bench/retrieval.py
	$(PY) bench/ingest.py
