"""Outbound webhook requests that go only where the address check said they may.

The host name is resolved once; every address it resolves to is checked
(``alerts.domain.webhooks.address_public``), and the connection is made to one of those very
addresses by ``PinnedAddressAdapter``. ``requests`` never resolves the name again, so a DNS
answer that changes between check and connection (DNS rebinding) cannot point the request at an
internal service. The request keeps its URL: the ``Host`` header, the TLS server name (SNI) and
the certificate check all use the host name.

This module must not follow redirects, use proxies from the environment, or read the
receiver's answer beyond its status line: the caller records a status code and a fixed reason,
never text a receiver chose.
"""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3.exceptions import NewConnectionError

from alerts.domain.webhooks import refused_addresses

DEFAULT_PORTS = {"http": 80, "https": 443}
# A host name with more addresses than this is tried on its first ones only (bounded work).
MAX_ADDRESSES_TRIED = 4
RETRYABLE_STATUS = {408, 425, 429}
logger = logging.getLogger(__name__)


class WebhookRefused(Exception):
    """The URL may not be called; ``reason`` is the fixed text for the delivery log."""

    def __init__(self, message: str, *, reason: str, retryable: bool = False) -> None:
        super().__init__(message)
        self.reason = reason
        self.retryable = retryable


@dataclass(frozen=True)
class WebhookTarget:
    url: str
    scheme: str
    host: str  # lower case, IPv6 without brackets
    port: int
    addresses: tuple[str, ...]  # checked, in the resolver's order

    @property
    def host_header(self) -> str:
        name = f"[{self.host}]" if ":" in self.host else self.host
        return name if self.port == DEFAULT_PORTS[self.scheme] else f"{name}:{self.port}"


@dataclass(frozen=True)
class WebhookAnswer:
    status_code: int | None
    reason: str  # "" when delivered (2xx), else a fixed text such as "HTTP 500"
    retryable: bool


def webhook_target(url: str) -> WebhookTarget:
    """Resolve ``url``'s host once and check every address; raise ``WebhookRefused`` unless it
    is http(s) and all its addresses are public (or the operator set
    ``ALERTS_WEBHOOK_ALLOW_PRIVATE``, e.g. for an on-premises receiver or tests)."""
    try:
        if urlsplit(url).scheme not in DEFAULT_PORTS:
            raise WebhookRefused(
                "Webhook URLs must be http:// or https:// with a host name.",
                reason="URL not allowed",
            )
        # The URL as requests will send it (an international name in its IDNA form), so the
        # name resolved here is the one the adapter is pinned to.
        url = requests.Request("POST", url).prepare().url or ""
        parts = urlsplit(url)
        port = parts.port
    except (requests.RequestException, ValueError) as exc:
        raise WebhookRefused(f"{url} is not a valid URL.", reason="URL not allowed") from exc
    if not parts.hostname:
        raise WebhookRefused(
            "Webhook URLs must be http:// or https:// with a host name.", reason="URL not allowed"
        )
    host = parts.hostname
    port = port or DEFAULT_PORTS[parts.scheme]
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        # The resolver's own words stay in the log: the message is shown to the tenant.
        logger.info("webhook host %s does not resolve: %s", host, exc)
        raise WebhookRefused(
            f"{host} does not resolve to an address.",
            reason="host does not resolve",
            retryable=True,
        ) from exc
    addresses = tuple(dict.fromkeys(str(info[4][0]) for info in infos))
    if not getattr(settings, "ALERTS_WEBHOOK_ALLOW_PRIVATE", False):
        refused = refused_addresses(addresses)
        if refused:
            # The address stays out of the message, which the form and the API show: a tenant
            # admin must not learn what internal names resolve to. The operator finds it here.
            logger.warning(
                "webhook host %s refused: it resolves to the non-public address %s",
                host,
                refused[0],
            )
            raise WebhookRefused(
                f"{host} resolves to a non-public address (private, loopback or otherwise not"
                " reachable from the internet); the operator must allow private webhook addresses"
                " for this.",
                reason="address not allowed",
            )
    return WebhookTarget(url, parts.scheme, host, port, addresses)


def webhook_url_check(url: str) -> None:
    """The form's and the API's check: the rules of ``webhook_target`` as an early answer (the
    check that counts is made again at every delivery, since DNS answers change)."""
    webhook_target(url)


class PinnedAddressAdapter(HTTPAdapter):
    """Connects to ``address`` for requests to ``host``; everything else about the request
    (URL, ``Host`` header, TLS server name and certificate check) stays ``host``'s."""

    def __init__(self, *, host: str, host_header: str, address: str) -> None:
        self.host = host
        self.host_header = host_header
        self.address = address
        super().__init__(pool_connections=1, pool_maxsize=1, max_retries=0)

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: Any, cert: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(
            request, verify, cert
        )
        if host_params["host"] != self.host:
            raise ValueError(f"This connection is pinned to {self.host}.")
        if host_params["scheme"] == "https":
            pool_kwargs = {
                **pool_kwargs,
                "server_hostname": self.host,
                "assert_hostname": self.host,
            }
        return {**host_params, "host": self.address}, pool_kwargs

    def add_headers(self, request: requests.PreparedRequest, **kwargs: Any) -> None:
        # Without it http.client would send the address as the Host.
        request.headers["Host"] = self.host_header


def pinned_session(target: WebhookTarget, address: str) -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # no proxy or .netrc from the environment
    adapter = PinnedAddressAdapter(
        host=target.host, host_header=target.host_header, address=address
    )
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def webhook_post(
    target: WebhookTarget, *, body: bytes, headers: dict[str, str], timeout: tuple[float, float]
) -> WebhookAnswer:
    """POST to the target's checked addresses in order, moving on only when a connection could
    not be opened (nothing was sent). 2xx is delivered; 3xx is refused, never followed."""
    failure = WebhookAnswer(None, "connection failed", True)
    for address in target.addresses[:MAX_ADDRESSES_TRIED]:
        with pinned_session(target, address) as session:
            try:
                response = session.post(
                    target.url,
                    data=body,
                    headers=headers,
                    timeout=timeout,
                    allow_redirects=False,
                    stream=True,  # the status line is all we read
                )
            except requests.RequestException as exc:
                failure = WebhookAnswer(None, _failure_reason(exc), True)
                if _not_connected(exc):
                    continue
                return failure
            with response:
                return _answer(response.status_code)
    return failure


def _answer(code: int) -> WebhookAnswer:
    if 200 <= code < 300:
        return WebhookAnswer(code, "", False)
    if 300 <= code < 400:
        return WebhookAnswer(code, "redirect refused", False)
    return WebhookAnswer(code, f"HTTP {code}", code >= 500 or code in RETRYABLE_STATUS)


def _connect_error(exc: requests.RequestException) -> NewConnectionError | None:
    """The error of a connection that could not be opened (so nothing was sent), if it was."""
    cause = exc.args[0] if exc.args else None
    reason = getattr(cause, "reason", None)
    return reason if isinstance(reason, NewConnectionError) else None


def _not_connected(exc: requests.RequestException) -> bool:
    return isinstance(exc, requests.ConnectTimeout) or _connect_error(exc) is not None


def _failure_reason(exc: requests.RequestException) -> str:
    if isinstance(exc, requests.ConnectTimeout):
        return "connection timed out"
    if isinstance(exc, requests.ReadTimeout):
        return "no answer in time"
    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS error"
    if isinstance(exc, requests.ConnectionError):
        connect_error = _connect_error(exc)
        if connect_error is not None and isinstance(
            connect_error.__cause__, ConnectionRefusedError
        ):
            return "connection refused"
        return "connection failed"
    return "request failed"
