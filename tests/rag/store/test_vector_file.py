"""The vectors file beside a SQLite store: mapped by a new process at the same revision, ignored otherwise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lorag.rag.store import NewChunk, Store
from lorag.rag.store import vectors as vectors_module
from lorag.rag.store.vector_file import read_vector_file, vector_path


def _chunk(text: str, vec: list[float]) -> NewChunk:
    return NewChunk(text, None, 0, len(text), [text], np.array(vec, dtype=np.float32))


@pytest.fixture
def fresh_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """No vectors held in memory yet, as in a process that just started."""
    monkeypatch.setattr(vectors_module, "_matrices", {})


def _new_process_search(path: Path, vec: list[float]) -> list[tuple[int, float]]:
    vectors_module._matrices.clear()
    with Store(path) as store:
        return store.dense_search(np.array(vec, dtype=np.float32), 5)


def test_a_new_process_maps_the_file_written_by_the_first(tmp_path: Path, fresh_process: None) -> None:
    path = tmp_path / "lorag.db"
    with Store(path) as store:
        store.replace_document("/d/a.txt", "a", 0.0, 1, [_chunk("休暇", [1.0, 0.0]), _chunk("経費", [0.0, 1.0])])
        store.replace_document("/d/b.txt", "b", 0.0, 1, [_chunk("申請", [0.6, 0.8])], collection="人事")
        first = store.dense_search(np.array([1.0, 0.0], dtype=np.float32), 5)
        store_id, revision = store.get_meta("store_id"), store.revision()
    assert first == [(1, 1.0), (3, pytest.approx(0.6)), (2, 0.0)]
    assert store_id is not None and len(store_id) == 32
    mapped = read_vector_file(vector_path(path), store_id, revision)
    assert mapped is not None and isinstance(mapped.matrix, np.memmap)
    assert mapped.spans == {"default": (0, 2), "人事": (2, 3)} and mapped.ids.tolist() == [1, 2, 3]
    assert read_vector_file(vector_path(path), store_id, revision + 1) is None
    assert read_vector_file(vector_path(path), "another store", revision) is None
    assert _new_process_search(path, [1.0, 0.0]) == first
    held = vectors_module._matrices[str(path.resolve())].snapshot
    assert isinstance(held.matrix, np.memmap)  # read from the file, not from the blobs


def test_a_stale_file_is_ignored_and_rewritten(tmp_path: Path, fresh_process: None) -> None:
    path = tmp_path / "lorag.db"
    with Store(path) as store:
        store.replace_document("/d/a.txt", "a", 0.0, 1, [_chunk("休暇", [1.0, 0.0])])
        store.dense_search(np.array([1.0, 0.0], dtype=np.float32), 5)
    vectors_module._matrices.clear()
    with Store(path) as store:  # another process writes: the file now holds an older revision
        store.replace_document("/d/b.txt", "b", 0.0, 1, [_chunk("経費", [0.0, 1.0])])
        store_id, revision = store.get_meta("store_id"), store.revision()
    vectors_module._matrices.clear()
    assert _new_process_search(path, [0.0, 1.0]) == [(2, 1.0), (1, 0.0)]
    assert store_id is not None
    assert read_vector_file(vector_path(path), store_id, revision) is not None


def test_a_damaged_file_is_ignored(tmp_path: Path, fresh_process: None) -> None:
    path = tmp_path / "lorag.db"
    with Store(path) as store:
        store.replace_document("/d/a.txt", "a", 0.0, 1, [_chunk("休暇", [1.0, 0.0]), _chunk("経費", [0.0, 1.0])])
        store.dense_search(np.array([1.0, 0.0], dtype=np.float32), 5)
    file = vector_path(path)
    file.write_bytes(file.read_bytes()[:-4])  # cut short, as by a full disk
    assert _new_process_search(path, [0.0, 1.0]) == [(2, 1.0), (1, 0.0)]
    file.write_bytes(b"not a vectors file")
    assert _new_process_search(path, [0.0, 1.0]) == [(2, 1.0), (1, 0.0)]


def test_a_store_without_an_id_gets_one(tmp_path: Path, fresh_process: None) -> None:
    path = tmp_path / "lorag.db"
    with Store(path) as store:
        store.replace_document("/d/a.txt", "a", 0.0, 1, [_chunk("休暇", [1.0, 0.0])])
        store._db.execute("DELETE FROM meta WHERE key = 'store_id'")  # made before stores had ids
    with Store(path) as store:
        assert store.get_meta("store_id") is not None


def test_a_read_only_store_is_searched_without_writing(tmp_path: Path, fresh_process: None,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from lorag.errors import StoreError
    from lorag.rag.store import sqlite_connect as sqlite_module

    path = tmp_path / "lorag.db"
    with Store(path) as store:
        store.replace_document("/d/a.txt", "a", 0.0, 1, [_chunk("休暇", [1.0, 0.0])])
    monkeypatch.setattr(sqlite_module.os, "access", lambda *_: False)  # as for another user (root ignores modes)
    with Store(path) as store:
        assert store.read_only
        assert [d.path for d in store.list_documents()] == ["/d/a.txt"]
        assert store.lexical_search(["休暇"], 3) == [(1, pytest.approx(0.1150728))]
        assert store.dense_search(np.array([1.0, 0.0], dtype=np.float32), 3) == [(1, 1.0)]
        with pytest.raises(StoreError, match="is read-only"):
            store.replace_document("/d/b.txt", "b", 0.0, 1, [_chunk("経費", [0.0, 1.0])])


def test_a_large_store_keeps_its_codes_in_the_file(tmp_path: Path, fresh_process: None,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vectors_module, "EXACT_BELOW", 3)  # three rows count as large here
    path = tmp_path / "lorag.db"
    with Store(path) as store:
        store.replace_document("/d/a.txt", "a", 0.0, 1, [_chunk("休暇", [1.0, 0.0]), _chunk("経費", [0.0, 1.0]),
                                                        _chunk("申請", [0.6, 0.8])])
        first = store.dense_search(np.array([1.0, 0.0], dtype=np.float32), 2)
        store_id, revision = store.get_meta("store_id"), store.revision()
    assert first == [(1, 1.0), (3, pytest.approx(0.6))] and store_id is not None
    mapped = read_vector_file(vector_path(path), store_id, revision)
    assert mapped is not None and mapped.codes is not None and isinstance(mapped.codes.words, np.memmap)
    built = vectors_module.VectorCodes.of(mapped.matrix)
    assert mapped.codes.words.tolist() == built.words.tolist()
    assert mapped.codes.thresholds.tolist() == built.thresholds.tolist()
    assert _new_process_search(path, [1.0, 0.0])[:2] == first
    held = vectors_module._matrices[str(path.resolve())].snapshot
    assert held._codes[0] is not None and isinstance(held._codes[0].words, np.memmap)  # mapped, not built
