.PHONY: demo test install install-dev lint bench clean

PY := .venv/bin/python

demo: install  ## install, then ingest the bundled Japanese corpus and answer with citations
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
