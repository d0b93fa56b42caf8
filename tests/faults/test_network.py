"""Network faults from real clients on loopback (refused, silent server) are recognised and named in one line."""

from __future__ import annotations

import socket
import urllib.request

import pytest

from lorag.errors import NetworkError, recognise


def caught(call: object) -> BaseException:
    try:
        call()  # type: ignore[operator]
    except Exception as exc:
        return exc
    raise AssertionError("no exception")


def test_httpx_connection_refused(closed_port: str) -> None:
    import httpx

    fault = recognise(caught(lambda: httpx.get(closed_port + "/api/version", timeout=2)))
    assert isinstance(fault, NetworkError)
    assert str(fault) == (f"cannot reach {closed_port}: connection refused. Check that the server is running and the "
                          "address is right (llm.ollama_host, llm.openai_base_url, --ollama-host).")


def test_httpx_silent_server_times_out(silent_server: str) -> None:
    import httpx

    fault = recognise(caught(lambda: httpx.get(silent_server + "/api/version", timeout=0.3)))
    assert str(fault) == (f"{silent_server} did not answer in time (timed out waiting for an answer). Check that the "
                          "server is running and not overloaded, then try again.")


def test_plain_socket_and_urllib(closed_port: str, silent_server: str) -> None:
    port = int(closed_port.rsplit(":", 1)[1])
    fault = recognise(caught(lambda: socket.create_connection(("127.0.0.1", port), timeout=2)))
    assert fault is not None and fault.message == "cannot reach the server: connection refused."
    fault = recognise(caught(lambda: urllib.request.urlopen(closed_port, timeout=2)))
    assert fault is not None and fault.message == "cannot reach the server: connection refused."
    fault = recognise(caught(lambda: urllib.request.urlopen(silent_server, timeout=0.3)))
    assert fault is not None and fault.message == "the server did not answer in time (timed out)."


@pytest.mark.parametrize("client", ["ollama", "openai"])
def test_client_libraries(client: str, closed_port: str, silent_server: str) -> None:
    if client == "ollama":
        import ollama

        def call(url: str, timeout: float) -> None:
            ollama.Client(host=url, timeout=timeout).list()
    else:
        import openai

        def call(url: str, timeout: float) -> None:
            openai.OpenAI(base_url=url + "/v1", api_key="x", timeout=timeout, max_retries=0).models.list()

    refused = recognise(caught(lambda: call(closed_port, 2)))
    assert refused is not None and refused.message == f"cannot reach {closed_port}: connection refused."
    silent = recognise(caught(lambda: call(silent_server, 0.3)))
    assert silent is not None and silent.message.startswith(f"{silent_server} did not answer in time (timed out")


def test_unrelated_errors_are_not_faults() -> None:
    assert recognise(ValueError("bad")) is None
    assert recognise(KeyError("x")) is None
    assert recognise(OSError(2, "No such file or directory", "x")) is None

