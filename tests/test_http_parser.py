"""The production server parses HTTP in C (gunicorn's ``fast`` extra, ``gunicorn_h1c``): the
configuration asks for it, gunicorn takes it for every request, and a real server started with
that configuration reads a chunked body, answers each request of a kept-alive connection with
its own headers and refuses a malformed request line."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from gunicorn.config import Config
from gunicorn.http.message import Request
from gunicorn.http.unreader import IterUnreader

from factory_portal import gunicorn_conf
from tests.support import free_port

ROOT = Path(__file__).resolve().parents[1]
GUNICORN_CONF = "python:factory_portal.gunicorn_conf"


def _production_config() -> Config:
    """gunicorn's settings as ``-c python:factory_portal.gunicorn_conf`` loads them."""
    config = Config()
    for name, value in vars(gunicorn_conf).items():
        if name in config.settings:
            config.set(name, value)
    return config


def test_the_production_configuration_parses_requests_in_c() -> None:
    config = _production_config()
    assert config.http_parser == "fast"
    raw = b"GET /healthz?x=1 HTTP/1.1\r\nHost: a.example\r\nX-Request-ID: abc\r\n\r\n"
    request = Request(config, IterUnreader(iter([raw])), ("127.0.0.1", 5000))
    assert request._use_fast  # the C parser, not the Python fallback
    assert (request.method, request.path, request.query) == ("GET", "/healthz", "x=1")
    assert ("X-REQUEST-ID", "abc") in request.headers


def _wait_ready(port: int) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                connection.close()
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_a_real_server_with_the_c_parser_keeps_requests_apart() -> None:
    port = free_port()
    env = {
        **os.environ,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "WEB_CONCURRENCY": "1",
        "WEB_THREADS": "1",
    }
    server = subprocess.Popen(  # noqa: S603 - fixed arguments
        [sys.executable, "-m", "gunicorn", "-c", GUNICORN_CONF, "factory_portal.wsgi"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_ready(port)
        # A chunked body: the parser finds its end (no Content-Length to go by).
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request(
            "POST",
            "/healthz",
            # Small, so that all of it is sent before the answer: the health check never reads
            # it, and the server may close a connection whose body is left unread.
            body=iter([b'{"padding": ', b'"' + b"x" * 500 + b'"', b"}"]),
            headers={"Content-Type": "application/json"},
            encode_chunked=True,
        )
        assert connection.getresponse().status == 200
        connection.close()
        # Requests one after the other on one kept-alive connection, each answered with the
        # request id it named (its own headers, parsed anew).
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
    finally:
        server.terminate()
        assert server.wait(timeout=30) == 0
