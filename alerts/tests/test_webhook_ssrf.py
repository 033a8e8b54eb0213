"""Webhooks go only where the address check allowed: a DNS answer that changes after the check
(rebinding) does not move the connection, redirects are not followed, TLS keeps the host name,
and nothing a receiver answers reaches the delivery log."""

from __future__ import annotations

import importlib
import logging
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from django.apps import apps as django_apps
from django.test import override_settings
from django_tenants.utils import schema_context

from alerts.models import Alert, Delivery, WebhookEndpoint
from alerts.services.deliver import delivery_send
from alerts.services.engine import AlertSpec, alert_raise
from alerts.services.webhook_http import (
    PinnedAddressAdapter,
    WebhookRefused,
    WebhookTarget,
    pinned_session,
    webhook_target,
    webhook_url_check,
)
from alerts.tests.test_alerts import Receiver
from tests.support import bearer, free_port, host_client, key_for, logged_in_client

pytestmark = pytest.mark.django_db

HOST = "hooks.example.test"
PUBLIC_ADDRESS = "93.184.215.14"
REAL_GETADDRINFO = socket.getaddrinfo


def _answer(address: str, port: int) -> list[tuple]:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sockaddr = (address, port, 0, 0) if family == socket.AF_INET6 else (address, port)
    return [(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", sockaddr)]


class Resolver:
    """A DNS stand-in: ``answers`` lists what successive look-ups of ``HOST`` return, and
    ``routes`` sends a public address to a local port (the network, in this test)."""

    def __init__(self, answers: list[list[str]], routes: dict[str, int] | None = None) -> None:
        self.answers = answers
        self.routes = routes or {}
        self.lookups = 0

    def __call__(self, host, port, *args, **kwargs):  # type: ignore[no-untyped-def]
        if host == HOST:
            self.lookups += 1
            addresses = self.answers[min(self.lookups, len(self.answers)) - 1]
            return [info for address in addresses for info in _answer(address, port)]
        if host in self.routes:
            return REAL_GETADDRINFO("127.0.0.1", self.routes[host], *args, **kwargs)
        return REAL_GETADDRINFO(host, port, *args, **kwargs)


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    started: list[Receiver] = []
    yield started
    for receiver in started:
        receiver.close()


def _receiver(started: list[Receiver], statuses: list[int] | None = None) -> Receiver:
    receiver = Receiver(statuses or [])
    started.append(receiver)
    return receiver


def _deliver(tenant, url: str) -> Delivery:
    with schema_context(tenant.schema):
        WebhookEndpoint.objects.create(name="ops", url=url, secret="k")
        alert = alert_raise(AlertSpec(key="ssrf:1", kind=Alert.Kind.TEST, title="Test", data={}))
        delivery = Delivery.objects.get(alert=alert)
        delivery_send(delivery.pk)
        delivery.refresh_from_db()
    return delivery


def test_a_dns_answer_that_changes_after_the_check_does_not_move_the_connection(
    alpha, receivers, monkeypatch
):
    """The name resolves to a public address when checked and to 127.0.0.1 a moment later:
    the request still goes to the public address, with the original Host header."""
    internal = _receiver(receivers)  # an internal service on the portal's loopback
    public = _receiver(receivers)  # the receiver at the public address
    port = internal.server.server_port
    resolver = Resolver(
        [[PUBLIC_ADDRESS], ["127.0.0.1"]], routes={PUBLIC_ADDRESS: public.server.server_port}
    )
    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    delivery = _deliver(alpha, f"http://{HOST}:{port}/hook")
    assert internal.requests == []
    assert delivery.status == "sent" and len(public.requests) == 1
    assert public.requests[0][0]["Host"] == f"{HOST}:{port}"
    assert resolver.lookups == 1


@override_settings(ALERTS_WEBHOOK_ALLOW_PRIVATE=True)
def test_with_private_addresses_allowed_the_connection_is_pinned_too(alpha, receivers, monkeypatch):
    receiver = _receiver(receivers)
    monkeypatch.setattr(socket, "getaddrinfo", Resolver([["127.0.0.1"], ["127.0.0.2"]]))
    delivery = _deliver(alpha, f"http://{HOST}:{receiver.server.server_port}/hook")
    assert delivery.status == "sent" and len(receiver.requests) == 1
    assert receiver.requests[0][0]["Host"] == f"{HOST}:{receiver.server.server_port}"


def test_one_non_public_address_among_public_ones_refuses_the_host(alpha, receivers, monkeypatch):
    public = _receiver(receivers)
    resolver = Resolver(
        [[PUBLIC_ADDRESS, "10.0.0.5"]], routes={PUBLIC_ADDRESS: public.server.server_port}
    )
    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    delivery = _deliver(alpha, f"https://{HOST}/hook")
    assert (delivery.status, delivery.last_error) == ("failed", "address not allowed")
    assert public.requests == []


def test_a_refused_host_is_answered_without_the_address_it_resolves_to(alpha, monkeypatch, caplog):
    """A tenant admin must not learn what an internal name resolves to from the form or the
    API: the answer says only that it is not public; the address goes to the operator's log."""
    monkeypatch.setattr(socket, "getaddrinfo", Resolver([["127.0.0.1"]]))
    url = f"http://{HOST}/hook"
    _, manager = key_for(alpha, ["manage"])
    with caplog.at_level(logging.INFO, logger="alerts.services.webhook_http"):
        page = logged_in_client(alpha.host, alpha.admin_email).post(
            "/settings/webhooks/", {"name": "x", "url": url}
        )
        api = host_client(alpha.host).post(
            "/api/v1/webhooks",
            {"name": "x", "url": url},
            content_type="application/json",
            **bearer(manager),
        )
    for response in (page, api):
        text = response.content.decode()
        assert response.status_code == 400 and f"{HOST} resolves to a non-public address" in text
        assert "127.0.0.1" not in text
    assert api["Content-Type"] == "application/problem+json"
    logged = [r.getMessage() for r in caplog.records if r.name == "alerts.services.webhook_http"]
    assert (
        logged
        == [f"webhook host {HOST} refused: it resolves to the non-public address 127.0.0.1"] * 2
    )


@override_settings(ALERTS_WEBHOOK_ALLOW_PRIVATE=True)
def test_the_next_checked_address_is_tried_when_one_does_not_connect(alpha, receivers, monkeypatch):
    receiver = _receiver(receivers)
    # Nothing listens on 127.0.0.2 (the receiver is bound to 127.0.0.1 only): refused at once.
    monkeypatch.setattr(socket, "getaddrinfo", Resolver([["127.0.0.2", "127.0.0.1"]]))
    delivery = _deliver(alpha, f"http://{HOST}:{receiver.server.server_port}/hook")
    assert delivery.status == "sent" and len(receiver.requests) == 1


@override_settings(ALERTS_WEBHOOK_ALLOW_PRIVATE=True)
def test_redirects_are_refused_not_followed(alpha, receivers):
    internal = _receiver(receivers)
    redirecting = _receiver(receivers, [307])
    redirecting.answer_headers = {"Location": internal.url}
    delivery = _deliver(alpha, redirecting.url)
    assert internal.requests == [] and len(redirecting.requests) == 1
    assert delivery.status == "failed" and delivery.attempts == 1
    assert (delivery.last_status_code, delivery.last_error) == (307, "redirect refused")


@override_settings(ALERTS_WEBHOOK_ALLOW_PRIVATE=True)
def test_the_receivers_answer_stays_out_of_the_delivery_log(alpha, receivers):
    receiver = _receiver(receivers, [500])
    receiver.answer_body = b"db=postgres://admin:hunter2@10.0.0.7/main"
    delivery = _deliver(alpha, receiver.url)
    assert delivery.status == "pending" and delivery.last_status_code == 500
    assert delivery.last_error == "HTTP 500"
    page = logged_in_client(alpha.host, alpha.admin_email).get(
        f"/settings/webhooks/{delivery.endpoint_id}/"
    )
    assert page.status_code == 200 and "HTTP 500" in page.content.decode()
    assert "hunter2" not in page.content.decode()


@override_settings(ALERTS_WEBHOOK_ALLOW_PRIVATE=True)
def test_connection_failures_are_logged_with_a_fixed_reason(alpha):
    delivery = _deliver(alpha, f"http://127.0.0.1:{free_port()}/hook")
    assert delivery.status == "pending" and delivery.last_status_code is None
    assert delivery.last_error == "connection refused"


def test_a_host_that_does_not_resolve_is_retried_with_a_fixed_reason(alpha, monkeypatch):
    def no_answer(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_answer)
    delivery = _deliver(alpha, f"https://{HOST}/hook")
    assert (delivery.status, delivery.last_error) == ("pending", "host does not resolve")
    # The form's message names the host, not the resolver's words (a tenant admin sees it).
    with pytest.raises(WebhookRefused) as refused:
        webhook_url_check(f"https://{HOST}/hook")
    assert str(refused.value) == f"{HOST} does not resolve to an address."


def test_old_log_rows_lose_the_answer_text_they_stored(alpha):
    migration = importlib.import_module("alerts.migrations.0003_delivery_error_without_answer")
    with schema_context(alpha.schema):
        WebhookEndpoint.objects.create(name="ops", url="https://example.com/h", secret="k")
        alert = alert_raise(AlertSpec(key="old:1", kind=Alert.Kind.TEST, title="Old", data={}))
        Delivery.objects.filter(alert=alert).update(
            last_status_code=500, last_error="HTTP 500: internal secret"
        )
        migration.answers_forget(django_apps, None)
        assert Delivery.objects.get(alert=alert).last_error == "HTTP 500"


# --- the pinned transport: Host header, TLS server name, certificate check ------------------


def test_the_adapter_connects_to_the_address_and_names_the_host_for_tls():
    adapter = PinnedAddressAdapter(host=HOST, host_header=HOST, address=PUBLIC_ADDRESS)
    request = requests.Request("POST", f"https://{HOST}/hook", data=b"{}").prepare()
    pool = adapter.get_connection_with_tls_context(request, verify=True)
    assert pool.host == PUBLIC_ADDRESS and pool.port == 443
    assert pool.conn_kw["server_hostname"] == HOST and pool.assert_hostname == HOST
    other = requests.Request("POST", "https://elsewhere.example/hook").prepare()
    with pytest.raises(requests.exceptions.InvalidURL):
        adapter.get_connection_with_tls_context(other, verify=True)


def test_the_target_keeps_the_port_in_the_host_header_only_when_it_is_not_the_default():
    def target(url: str) -> WebhookTarget:
        with override_settings(ALERTS_WEBHOOK_ALLOW_PRIVATE=True):
            return webhook_target(url)

    assert target("https://127.0.0.1/h").host_header == "127.0.0.1"
    assert target("https://127.0.0.1:8443/h").host_header == "127.0.0.1:8443"
    assert target("http://[::1]:80/h").host_header == "[::1]"
    assert target("http://127.0.0.1/h").addresses == ("127.0.0.1",)


def test_an_international_name_is_resolved_and_pinned_in_the_form_requests_sends(monkeypatch):
    looked_up = []
    monkeypatch.setattr(
        socket,
        "getaddrinfo",
        lambda host, port, **kw: looked_up.append(host) or _answer(PUBLIC_ADDRESS, port),
    )
    target = webhook_target("https://Bücher.example/hook")
    assert looked_up == ["xn--bcher-kva.example"] == [target.host]
    assert target.url == "https://xn--bcher-kva.example/hook"
    assert target.addresses == (PUBLIC_ADDRESS,)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[Path, Path]:
    """A self-signed certificate for ``HOST`` only (its own trust anchor)."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(  # noqa: S603
        [
            *("openssl", "req", "-x509", "-nodes", "-days", "1"),
            *("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"),
            *("-keyout", str(key), "-out", str(cert)),
            *("-subj", f"/CN={HOST}", "-addext", f"subjectAltName=DNS:{HOST}"),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture
def tls_receiver(certificate) -> Iterator[tuple[ThreadingHTTPServer, dict[str, list]]]:
    seen: dict[str, list] = {"server_names": [], "hosts": []}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            seen["hosts"].append(self.headers["Host"])
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    context.sni_callback = lambda sock, name, ctx: seen["server_names"].append(name)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server, seen
    server.shutdown()
    server.server_close()


def test_https_to_the_pinned_address_sends_the_host_name_and_checks_the_certificate_for_it(
    tls_receiver, certificate, monkeypatch
):
    server, seen = tls_receiver
    port = server.server_port

    def no_dns(host, *args, **kwargs):  # type: ignore[no-untyped-def]
        assert host != HOST, "the pinned transport must not resolve the host name again"
        return REAL_GETADDRINFO(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    target = WebhookTarget(f"https://{HOST}:{port}/hook", "https", HOST, port, ("127.0.0.1",))
    with pinned_session(target, "127.0.0.1") as session:
        response = session.post(target.url, data=b"{}", verify=str(certificate[0]), timeout=5)
    assert response.status_code == 204
    assert seen["server_names"] == [HOST] and seen["hosts"] == [f"{HOST}:{port}"]

    # The same address under another name: the certificate does not match that name.
    other = "other.example.test"
    mismatch = WebhookTarget(f"https://{other}:{port}/hook", "https", other, port, ("127.0.0.1",))
    with (
        pinned_session(mismatch, "127.0.0.1") as session,
        pytest.raises(requests.exceptions.SSLError),
    ):
        session.post(mismatch.url, data=b"{}", verify=str(certificate[0]), timeout=5)
