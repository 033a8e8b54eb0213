"""JSON log lines: the fields every line has, request ids (the client's, else a fresh one),
the run a URL names, and no API key or password in any line."""

from __future__ import annotations

import json
import logging
import re
import sys
import threading

import pytest
from django.http import HttpResponse

from factory_portal.accounts.keys import key_generate
from factory_portal.observability import context, masking
from factory_portal.observability.logging import PlainFormatter
from factory_portal.observability.masking import secrets_mask as redact
from factory_portal.observability.middleware import RequestObservabilityMiddleware
from tests.support import bearer, host_client, key_for, logged_in_client

FIELDS = {
    "timestamp",
    "level",
    "message",
    "logger",
    "tenant_id",
    "request_id",
    "trace_id",
    "span_id",
    "run_id",
    "job_id",
}


def access_lines(json_logs, path: str) -> list[dict[str, object]]:
    return [r for r in json_logs.records() if r["logger"] == "portal.access" and r["path"] == path]


def test_every_line_has_the_fields_and_a_utc_timestamp(json_logs, alpha):
    host_client(alpha.host).get("/login/")
    (line,) = access_lines(json_logs, "/login/")
    assert set(line) >= FIELDS
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", str(line["timestamp"]))
    assert (line["level"], line["tenant_id"], line["status"]) == ("INFO", "alpha", 200)
    assert line["trace_id"] is None and line["span_id"] is None  # tracing is off


def test_the_clients_request_id_is_used_and_echoed(json_logs, alpha):
    response = host_client(alpha.host).get("/login/", HTTP_X_REQUEST_ID="lb-7f3a.91:2")
    assert response["X-Request-ID"] == "lb-7f3a.91:2"
    assert access_lines(json_logs, "/login/")[0]["request_id"] == "lb-7f3a.91:2"


@pytest.mark.parametrize("sent", ["", "two words", "x" * 129, "inject\nfake line", "a;b"])
def test_unusable_client_ids_are_replaced_by_a_fresh_one(json_logs, alpha, sent):
    response = host_client(alpha.host).get("/login/", HTTP_X_REQUEST_ID=sent)
    assert re.fullmatch(r"[0-9a-f]{32}", response["X-Request-ID"])
    assert access_lines(json_logs, "/login/")[0]["request_id"] == response["X-Request-ID"]


def test_each_request_gets_its_own_id_and_the_context_is_left_clean(alpha):
    client = host_client(alpha.host)
    first = client.get("/login/")["X-Request-ID"]
    second = client.get("/login/")["X-Request-ID"]
    assert first != second
    assert context.current() == dict.fromkeys(context.FIELDS)


def test_a_url_that_names_a_run_puts_it_in_the_lines(json_logs, alpha):
    client = logged_in_client(alpha.host, alpha.admin_email)
    client.get("/runs/run-abc-123/")
    (line,) = access_lines(json_logs, "/runs/run-abc-123/")
    assert line["run_id"] == "run-abc-123" and line["tenant_id"] == "alpha"


def test_lines_written_inside_a_task_or_block_carry_its_context(json_logs):
    with context.bind(tenant_id="alpha", run_id="r-9", job_id="j-2", request_id="req-1"):
        logging.getLogger("portal.test").warning("step failed")
    (line,) = [r for r in json_logs.records() if r["logger"] == "portal.test"]
    assert (line["tenant_id"], line["run_id"], line["job_id"], line["request_id"]) == (
        "alpha",
        "r-9",
        "j-2",
        "req-1",
    )


def test_api_keys_never_reach_the_logs(json_logs, alpha):
    _, raw = key_for(alpha, ["read"])
    unknown = key_generate().raw
    client = host_client(alpha.host)
    assert client.get("/api/v1/projects", **bearer(raw)).status_code == 200
    assert client.get("/api/v1/projects", **bearer(unknown)).status_code == 401
    # Whatever a caller writes, a key, a bearer token or a password is masked.
    logging.getLogger("portal.test").warning(
        "retrying with %s (Authorization: Bearer %s) password=%s", raw, unknown, "hunter22"
    )
    text = json_logs.text()
    assert "portal.test" in text and "Unauthorized" in text
    # A key is fp_<prefix>_<secret>; the secret may itself contain "_".
    for secret in (raw, unknown, raw.split("_", 2)[2], "hunter22"):
        assert secret not in text
    assert f"fp_{raw.split('_')[1]}_[redacted]" in text  # the prefix still tells which key


def test_invitation_tokens_never_reach_the_logs(json_logs, alpha, invitation):
    """The access line of an invitation link, its redirect without the trailing slash, a token in
    a query string and a link a caller logs: the token and the user id are masked everywhere."""
    client = host_client(alpha.host)
    assert client.get(invitation.path).status_code == 302  # on to the set-password form
    assert client.get(invitation.path.rstrip("/")).status_code == 301  # APPEND_SLASH, no route
    client.get(f"/login/?next=/&token={invitation.token}")
    logging.getLogger("portal.test").warning("sent http://alpha.localhost%s", invitation.path)
    text = json_logs.text()
    assert "portal.test" in text
    assert invitation.token not in text and f"/{invitation.uidb64}/" not in text
    (line,) = access_lines(json_logs, "/invite/[redacted]/[redacted]/")
    assert line["message"] == "GET /invite/[redacted]/[redacted]/ 302"
    assert line["route"] == "/invite/<uidb64>/<token>/"  # the template stays readable
    assert access_lines(json_logs, "/invite/[redacted]/[redacted]")[0]["status"] == 301


INVITE = "/invite/MTIz/cz1abc-0123456789abcdef/"


def test_masking_never_waits_for_the_thread_that_builds_the_secret_routes(monkeypatch):
    """The builder imports the URL confs; a thread that logs while importing one of their
    modules must not wait for it (each would wait for the other). Meanwhile lines are masked
    with the other patterns; once built, with the routes too."""
    monkeypatch.setattr(masking, "_routes", None)
    building, release = threading.Event(), threading.Event()
    compile_routes = masking._routes_compile

    def held_compile():
        building.set()
        release.wait(10)
        return compile_routes()

    monkeypatch.setattr(masking, "_routes_compile", held_compile)
    builder = threading.Thread(target=redact, args=("/",))
    builder.start()
    try:
        assert building.wait(5)
        masked: list[str] = []
        other = threading.Thread(target=lambda: masked.append(redact(f"{INVITE}?token=x1")))
        other.start()
        other.join(2)
        assert not other.is_alive(), "secrets_mask waited for the thread building the routes"
        assert masked == [f"{INVITE}?token=[redacted]"]  # the other patterns applied
    finally:
        release.set()
        builder.join(10)
    assert redact(INVITE) == "/invite/[redacted]/[redacted]/"


def test_the_secret_routes_are_built_when_the_middleware_is_loaded(monkeypatch):
    monkeypatch.setattr(masking, "_routes", None)
    RequestObservabilityMiddleware(lambda request: HttpResponse())
    assert masking._routes is not None and masking._routes.search(INVITE)


def test_a_worker_process_builds_the_secret_routes_before_its_first_task(monkeypatch):
    from celery import signals

    monkeypatch.setattr(masking, "_routes", None)
    signals.worker_process_init.send(sender=None)
    assert masking._routes is not None and masking._routes.search(INVITE)


def test_redaction_keeps_ordinary_text():
    text = "input token 1200 for run-42 of project checkout; the secret santa is fun"
    assert redact(text) == text
    assert redact('{"secret": "s3cr3t-value", "n": 1}') == '{"secret": "[redacted]", "n": 1}'
    assert redact("token abcdefgh12345678") == "token [redacted]"


@pytest.mark.parametrize("path", ["/api/v1/events", "/runs/"])
def test_a_lost_database_connection_is_a_retryable_503_not_a_500(rf, path):
    from django.db import OperationalError

    from factory_portal.errors import server_error

    request = rf.get(path)
    try:
        raise OperationalError("server closed the connection unexpectedly")
    except OperationalError:
        response = server_error(request)
    assert response.status_code == 503 and response["Retry-After"] == "2"
    if path.startswith("/api/"):
        assert response["Content-Type"] == "application/problem+json"
        assert json.loads(response.content)["status"] == 503
    else:
        assert b"Temporarily unavailable" in response.content
    try:
        raise ValueError("a bug")
    except ValueError:
        assert server_error(request).status_code == 500


def test_plain_lines_cannot_be_forged_by_client_text():
    """A request path or run id with a line break stays on its own line in ``LOG_FORMAT=plain``;
    a traceback (the formatter's own lines) still follows on lines of its own."""
    formatter = PlainFormatter()
    record = logging.LogRecord(
        "portal.access",
        logging.INFO,
        __file__,
        1,
        "GET %s 404",
        ("/runs/a\nFAKE 200\x1b[2J",),
        None,
    )
    record.request_id, record.tenant_id = "r1", "alpha"
    line = formatter.format(record)
    assert "\n" not in line
    assert line.endswith("GET /runs/a\\nFAKE 200\\x1b[2J 404")
    try:
        raise ValueError("boom")
    except ValueError:
        failing = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    failing.request_id = failing.tenant_id = None
    assert "Traceback" in formatter.format(failing).splitlines()[1]
