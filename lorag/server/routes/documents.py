"""Documents: upload (size-limited, stored under server-chosen names), list, delete and re-ingest."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Query, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from lorag.server.auth import require_reader, require_token
from lorag.server.errors import NotFoundError
from lorag.server.routes import get_state
from lorag.server.state import ServerState
from lorag.server.uploads import name_failures, nothing_ingested

router = APIRouter(tags=["documents"])
State = Annotated[ServerState, Depends(get_state)]


def _documents(state: ServerState, collection: str | None = None) -> list[dict[str, Any]]:
    from lorag.rag.store import open_store, store_location

    location = store_location(state.config)
    if isinstance(location, Path) and not location.exists():
        return []
    with open_store(state.config) as store:
        rows = store.list_documents(collection=collection)
    names = state.uploads.original_names()
    return [
        {**row.to_dict(), "name": names.get(row.path, Path(row.path).name), "uploaded": row.path in names}
        for row in rows
    ]


def _document(state: ServerState, doc_id: int) -> dict[str, Any]:
    for doc in _documents(state):
        if doc["id"] == doc_id:
            return doc
    raise NotFoundError(f"no document with id {doc_id}.")


def _collection(name: str | None) -> str | None:
    """``name`` checked as a collection name (a 400 naming the rule when it is not one)."""
    from lorag.rag.store import validate_collection

    return None if name is None else validate_collection(name)


@router.get("/api/documents", dependencies=[Depends(require_reader)])
def list_documents(state: State, collection: Annotated[str | None, Query(max_length=200)] = None) -> dict[str, Any]:
    """The ingested documents (of one collection, or all) with their original names, and the collections."""
    from lorag.rag.store import open_store

    docs = _documents(state, _collection(collection))
    with open_store(state.config) as store:
        names = [c._asdict() for c in store.collections()]
    return {"documents": docs, "collections": names}


@router.post("/api/documents", status_code=201, dependencies=[Depends(require_token)])
async def upload_documents(state: State, files: Annotated[list[UploadFile], File()],
                           collection: Annotated[str | None, Form(max_length=200)] = None) -> JSONResponse:
    """Upload files (txt, md, html, pdf, docx) into a collection and ingest them; the reply says what was added."""
    scope = _collection(collection)
    limit = int(state.config.settings.server.max_upload_mb * 1024 * 1024)
    saved: list[tuple[Path, str]] = []
    try:
        for upload in files:
            path = await run_in_threadpool(state.uploads.save, upload.file, upload.filename or "", limit)
            saved.append((path, upload.filename or path.name))
    except Exception:
        for path, _ in saved:
            state.uploads.forget(path)
        raise
    report = await state.gate.run(lambda: _ingest(state, [p for p, _ in saved], scope))
    failed = {item["path"]: item["reason"] for item in report["failed"]}
    for path, _ in saved:
        if str(path.resolve()) in failed:
            state.uploads.forget(path)
    failures = name_failures(report, saved)  # the user's file names, never the server's
    if len(failed) == len(saved):
        raise nothing_ingested(failures)
    return JSONResponse({"report": report, "documents": _documents(state)}, status_code=201)


def _ingest(state: ServerState, paths: list[Path], collection: str | None = None) -> dict[str, Any]:
    from lorag.rag.ingest import ingest_paths

    scope: dict[str, Any] = {"collection": collection} if collection is not None else {}
    report: dict[str, Any] = ingest_paths(state.config, paths, **scope).to_dict()
    return report


@router.delete("/api/documents/{doc_id}", dependencies=[Depends(require_token)])
async def delete_document(doc_id: int, state: State) -> dict[str, Any]:
    """Remove a document from the store (and its uploaded file, if it was uploaded)."""
    doc = _document(state, doc_id)

    def work() -> None:
        from lorag.rag.store import open_store

        with open_store(state.config) as store:
            store.delete_document(doc_id)
        state.uploads.forget(Path(doc["path"]))

    await state.gate.run(work)
    return {"deleted": doc}


@router.post("/api/documents/{doc_id}/reingest", dependencies=[Depends(require_token)])
async def reingest_document(doc_id: int, state: State) -> dict[str, Any]:
    """Read a document again (after it changed on disk, or after a chunking change)."""
    doc = _document(state, doc_id)
    if not Path(doc["path"]).exists():
        raise NotFoundError(f"{doc['name']} is no longer on disk; delete it or restore the file.")
    def work() -> dict[str, Any]:
        from lorag.rag.store import open_store

        # Forget the old chunks first: ingest skips files whose content did not change.
        with open_store(state.config) as store:
            store.delete_document(doc_id)
        return _ingest(state, [Path(doc["path"])], doc["collection"])

    report = await state.gate.run(work)
    doc_id = next((d["id"] for d in _documents(state) if d["path"] == doc["path"]), doc_id)
    return {"report": report, "document": _document(state, doc_id)}
