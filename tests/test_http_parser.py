"""The production server keeps gunicorn's Python HTTP parser, even where the C one
(``gunicorn_h1c``, gunicorn's ``fast`` extra) is installed: in gunicorn 25.3 the C parser never
answers ``Expect: 100-continue``, so a client that asks (curl, for a large batch) waited a
second before sending every body. The configuration asks for the Python parser, and a real
server started with it answers ``100 Continue`` before the body, reads a chunked body, answers
each request of a kept-alive connection with its own headers and refuses a malformed request
line."""

from __future__ import annotations

import http.client
import socket

from gunicorn.config import Config
from gunicorn.http.message import Request
from gunicorn.http.unreader import IterUnreader

from factory_portal import gunicorn_conf
from tests.support import production_server


def _production_config() -> Config:
    """gunicorn's settings as ``-c python:factory_portal.gunicorn_conf`` loads them."""
    config = Config()
    for name, value in vars(gunicorn_conf).items():
        if name in config.settings:
            config.set(name, value)
    return config


def test_the_production_configuration_keeps_the_python_parser():
    config = _production_config()
    assert config.http_parser == "python"
    raw = b"GET /healthz?x=1 HTTP/1.1\r\nHost: a.example\r\nX-Request-ID: abc\r\n\r\n"
    request = Request(config, IterUnreader(iter([raw])), ("127.0.0.1", 5000))
    assert not request._use_fast  # whatever else is installed
    assert (request.method, request.path, request.query) == ("GET", "/healthz", "x=1")
    assert ("X-REQUEST-ID", "abc") in request.headers


def test_a_real_server_answers_100_continue_and_keeps_requests_apart():
    with production_server({"WEB_CONCURRENCY": "1"}) as server:
        port = server.port
        # Expect: 100-continue: the interim answer comes before any of the body is sent.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            raw.sendall(
                b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
                b"Content-Length: 5\r\nExpect: 100-continue\r\n\r\n"
            )
            assert raw.recv(64).startswith(b"HTTP/1.1 100 Continue")
            raw.sendall(b"hello")
            assert raw.recv(4096).startswith(b"HTTP/1.1 200")
        # A chunked body (small: all of it is sent before the answer, as the health check
        # never reads it and the server may close a connection whose body is left unread).
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request(
            "POST",
            "/healthz",
            body=iter([b'{"padding": ', b'"' + b"x" * 500 + b'"', b"}"]),
            headers={"Content-Type": "application/json"},
            encode_chunked=True,
        )
        assert connection.getresponse().status == 200
        connection.close()
        # Requests one after the other on one kept-alive connection, each answered with the
        # request id it named.
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        for name in ("first-one", "second-one", "third-one"):
            connection.request("GET", "/healthz", headers={"X-Request-ID": name})
            answer = connection.getresponse()
            assert (answer.status, answer.getheader("X-Request-ID")) == (200, name)
            answer.read()
        connection.close()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            raw.sendall(b"GET /healthz HTTP/9.9 trailing\r\nHost: x\r\n\r\n")
            answer = raw.recv(4096)
        assert answer.startswith(b"HTTP/1.1 400"), answer[:80]
