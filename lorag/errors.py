"""User-facing errors: each says what went wrong and what to do next."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator

from lorag.atomic import TMP_PREFIX


class LoragError(Exception):
    """Base class for errors shown to the user as one line, never as a traceback."""

    exit_code = 1

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} {self.hint}".strip()


class ConfigError(LoragError):
    """The configuration file or an override is invalid."""


class IngestError(LoragError):
    """A document could not be read or indexed."""


class StoreError(LoragError):
    """The document store cannot be opened or written."""


class ModelError(LoragError):
    """A model path is missing, malformed or inconsistent."""


class AdapterError(ModelError):
    """A LoRA adapter is missing, malformed or does not match its base."""


class PlanError(ModelError):
    """No way of running the model fits this machine."""


class BuildError(LoragError):
    """The build pipeline failed; nothing was registered and the config is unchanged."""


class DiskSpaceError(BuildError):
    """Not enough free disk space for a build."""


class OllamaError(LoragError):
    """Ollama is unreachable or answered with an error."""


class GenerationError(LoragError):
    """The language model backend failed to load or to generate."""


class PathNotAllowedError(LoragError):
    """A path resolves outside the configured roots."""


class InputError(LoragError):
    """A command argument or request field is invalid (empty, too long, wrong type): the caller's mistake."""

    exit_code = 2  # the same code as a usage error from the command-line parser


class SystemFaultError(LoragError):
    """The machine refused the work (full disk, read-only file system, denied permission, unreachable server)."""


class DiskFullError(SystemFaultError):
    """A write failed because the disk (or the user's quota) is full."""


class ReadOnlyFileSystemError(SystemFaultError):
    """A write failed because the file system is mounted read-only."""


class PermissionDeniedError(SystemFaultError):
    """The operating system denied access to a file or directory."""


class NetworkError(SystemFaultError):
    """A server could not be reached, or stopped answering."""


class OutOfMemoryError(SystemFaultError):
    """The process ran out of memory."""


class DiskIOError(SystemFaultError):
    """The disk (or a network file system) failed a read or a write."""


class TooManyFilesError(SystemFaultError):
    """The process reached its limit of open files."""


# -- recognising expected failures ------------------------------------------------------------------------------
# recognise(exc) looks through an exception's whole chain (raised from, raised while handling, group members) for a
# full disk, a read-only file system, a denied permission, an unreachable server or exhausted memory, and returns one
# SystemFaultError that names it and says what to do. Usage:
#
#     except Exception as exc:
#         fault = recognise(exc)
#         if fault is None:
#             raise
#         raise fault from exc

_SQLITE_FULL, _SQLITE_READONLY, _SQLITE_IOERR = 13, 8, 10  # primary result codes (the low byte of extended ones)
_SQLITE_IOERR_SHMSIZE = 4874
_NEARLY_FULL = 1 << 20  # less free space than this makes a SQLite "disk I/O error" a full disk
_DISK_FULL_HINT = ("Free some space on that disk (`df -h` shows which), or move store.path / models.output_dir "
                   "to a larger one, then run the command again.")
_READ_ONLY_HINT = "Remount it read-write, or point lorag at a writable place (store.path, models.output_dir, -c FILE)."
_MEMORY_HINT = "Close other programs, or use a smaller model or quantization (`lorag model plan` shows what fits)."
_PERMISSION_HINT = "Check the owner and mode of that path (`ls -l`), or point lorag at a place this user may write."
_NETWORK_ERRNOS = {errno.ECONNREFUSED: "connection refused", errno.ETIMEDOUT: "timed out",
                   errno.ECONNRESET: "connection reset by the server", errno.ENETUNREACH: "network unreachable",
                   errno.EHOSTUNREACH: "host unreachable", errno.ECONNABORTED: "connection aborted"}
# Client-library exceptions by class name, so this module imports no HTTP library (the CLI must start fast).
_NETWORK_CLASSES = {"ConnectError": "cannot connect", "ConnectTimeout": "timed out while connecting",
                    "ReadTimeout": "timed out waiting for an answer", "WriteTimeout": "timed out while sending",
                    "PoolTimeout": "timed out waiting for a connection", "TimeoutException": "timed out",
                    "RemoteProtocolError": "the server closed the connection mid-answer",
                    "ReadError": "the connection broke while reading",
                    "WriteError": "the connection broke while sending", "APITimeoutError": "timed out",
                    "APIConnectionError": "cannot connect", "URLError": "cannot connect"}
_NETWORK_MODULES = ("httpx", "httpcore", "openai", "ollama", "urllib", "requests", "urllib3")


def chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every exception it was raised from or while handling, outermost first, each once."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo.extend(e for e in (current.__cause__, current.__context__) if e is not None)
        todo.extend(getattr(current, "exceptions", ()) or ())  # ExceptionGroup members


def recognise(exc: BaseException, path: str | os.PathLike[str] | None = None) -> SystemFaultError | None:
    """The expected failure behind ``exc`` (looked for through its whole chain) as one clear error, or None.

    ``path`` is where the failing write went, for errors that cannot say it themselves: SQLite reports some
    writes on a full disk as a plain "disk I/O error", which is then checked against the free space there.
    """
    links = list(chain(exc))
    for link in links:
        fault = _disk_or_access(link, path)
        if fault is not None:
            return fault
    for link in links:
        if isinstance(link, MemoryError):
            return OutOfMemoryError("ran out of memory.", _MEMORY_HINT)
    return _network(links) or _from_text(links)


# What the OS says, as text, where only the text survived: a child process's stderr (a converter, a quantizer), or a
# library that re-raised an OSError as its message.
_FAULT_TEXTS = (("No space left on device", DiskFullError, "the disk is full", _DISK_FULL_HINT),
                ("Disk quota exceeded", DiskFullError, "the disk quota is full", _DISK_FULL_HINT),
                ("Read-only file system", ReadOnlyFileSystemError, "a write hit a read-only file system",
                 _READ_ONLY_HINT),
                ("Cannot allocate memory", OutOfMemoryError, "ran out of memory", _MEMORY_HINT))


def _from_text(links: list[BaseException]) -> SystemFaultError | None:
    for link in links:
        texts = [str(link), *(getattr(link, name, None) for name in ("stderr", "output"))]
        joined = " ".join(t.decode("utf-8", "replace") if isinstance(t, bytes) else t for t in texts if t)
        for needle, cls, message, hint in _FAULT_TEXTS:
            if needle in joined:
                return cls(f"{message} ({type(link).__name__}: {needle}).", hint)
    return None


def clarify(exc: LoragError) -> LoragError:
    """``exc``, or when a full disk, read-only file system or denied permission hides behind it, an error naming that.

    A wrapper written for one cause (say "cannot open the store: disk I/O error; if the file is damaged, move it
    away") must not send the user the wrong way when the disk is simply full.
    """
    if isinstance(exc, SystemFaultError):
        return exc
    hidden = [e for e in (exc.__cause__, exc.__context__) if e is not None]
    fault = next((f for f in map(recognise, hidden) if f is not None), None)
    if fault is None or isinstance(fault, NetworkError) or _already_says(exc.message, fault):
        return exc
    combined = type(fault)(f"{fault.message.rstrip('.')}: {exc.message}", fault.hint)
    combined.__cause__ = exc
    return combined


def _already_says(message: str, fault: SystemFaultError) -> bool:
    words = {DiskFullError: ("disk is full", "disk space", "no space"), ReadOnlyFileSystemError: ("read-only",),
             PermissionDeniedError: ("permission",), OutOfMemoryError: ("memory",)}
    return any(w in message.lower() for w in words.get(type(fault), ()))


def _disk_or_access(exc: BaseException, path: str | os.PathLike[str] | None) -> SystemFaultError | None:
    if isinstance(exc, OSError) and exc.errno is not None:
        where = _where(exc)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return DiskFullError(f"the disk is full{' (writing ' + where + ')' if where else ''}.", _DISK_FULL_HINT)
        if exc.errno == errno.EROFS:
            return ReadOnlyFileSystemError(f"{where or 'the target'} is on a read-only file system.", _READ_ONLY_HINT)
        if exc.errno in (errno.EACCES, errno.EPERM):
            return PermissionDeniedError(f"permission denied{': ' + where if where else ''}.", _PERMISSION_HINT)
        if exc.errno == errno.EIO:
            return DiskIOError(f"the disk failed to read or write{' ' + where if where else ''} (I/O error).",
                               "Check the disk or the network file system (`dmesg` shows why), then try again.")
        if exc.errno in (errno.EMFILE, errno.ENFILE):
            return TooManyFilesError("too many open files.", "Raise the limit (`ulimit -n 4096`) and try again.")
        if exc.errno == errno.ENOMEM:
            return OutOfMemoryError("ran out of memory.", _MEMORY_HINT)
        return None
    if type(exc).__module__ == "sqlite3":
        return _sqlite_fault(exc, path)
    return None


def _sqlite_fault(exc: BaseException, path: str | os.PathLike[str] | None) -> SystemFaultError | None:
    extended = getattr(exc, "sqlite_errorcode", 0) or 0
    text = str(exc).lower()
    full = extended & 0xFF == _SQLITE_FULL or "database or disk is full" in text
    # Growing the WAL index (-shm) on a full disk fails as SQLITE_IOERR_SHMSIZE, "disk I/O error".
    full = full or extended == _SQLITE_IOERR_SHMSIZE
    if not full and extended & 0xFF == _SQLITE_IOERR and path is not None:
        full = _free_bytes(path) < _NEARLY_FULL
    if full:
        return DiskFullError("the disk is full (the SQLite store could not grow).", _DISK_FULL_HINT)
    if extended & 0xFF == _SQLITE_READONLY or "readonly database" in text:
        return ReadOnlyFileSystemError("the SQLite store is read-only (its file, directory or disk).", _READ_ONLY_HINT)
    return None


def _free_bytes(path: str | os.PathLike[str]) -> int:
    import shutil

    target = os.fspath(path)
    while target and not os.path.exists(target):
        target = os.path.dirname(target)
    try:
        return shutil.disk_usage(target or ".").free
    except OSError:
        return 1 << 62


def _where(exc: OSError) -> str:
    name = exc.filename
    if not name:
        return ""
    text = str(name)
    base = text.rsplit("/", 1)
    if base[-1].startswith(TMP_PREFIX):  # lorag.atomic's temp file beside its target: the folder says where
        return base[0] if len(base) == 2 and base[0] else "."
    return text


def _network(links: list[BaseException]) -> NetworkError | None:
    # The operating system's reason (refused, reset, unreachable) says more than a client library's class name.
    reasons = [(_os_reason(link), _library_reason(link)) for link in links]
    os_reason = next((r for r, _ in reasons if r), "")
    library_reason = next((r for _, r in reasons if r), "")
    if not (os_reason or library_reason):
        return None
    # ... except for timeouts, where the library knows whether connecting or waiting for the answer timed out.
    timeout = os_reason == "timed out" and library_reason.startswith("timed out")
    reason = library_reason if timeout or not os_reason else os_reason
    url = next((u for u in map(_url_of, links) if u), "")
    target = url or "the server"
    if "timed out" in reason:
        return NetworkError(f"{target} did not answer in time ({reason}).",
                            "Check that the server is running and not overloaded, then try again.")
    return NetworkError(f"cannot reach {target}: {reason}.",
                        "Check that the server is running and the address is right "
                        "(llm.ollama_host, llm.openai_base_url, --ollama-host).")


def _os_reason(exc: BaseException) -> str:
    import socket

    if isinstance(exc, socket.gaierror):
        return "host name not found"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.errno in _NETWORK_ERRNOS:
        return _NETWORK_ERRNOS[exc.errno]
    return ""


def _library_reason(exc: BaseException) -> str:
    for cls in type(exc).__mro__:
        if cls.__name__ in _NETWORK_CLASSES and cls.__module__.split(".")[0] in _NETWORK_MODULES:
            return _NETWORK_CLASSES[cls.__name__]
    if isinstance(exc, ConnectionError):
        return "connection lost"
    return ""


def _url_of(exc: BaseException) -> str:
    try:
        request = getattr(exc, "request", None)  # httpx raises RuntimeError when no request is attached
    except RuntimeError:
        return ""
    url = getattr(request, "url", None)
    if url is None:
        return ""
    scheme, host, port = getattr(url, "scheme", ""), getattr(url, "host", ""), getattr(url, "port", None)
    if not host:
        return ""
    return f"{scheme}://{host}{':' + str(port) if port else ''}"
