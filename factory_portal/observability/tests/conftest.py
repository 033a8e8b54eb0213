"""Fixtures: spans in memory with every integration instrumented, the JSON log lines the
portal writes, captured from a handler configured exactly like the production one, and a fresh
invitation link (a URL that carries a secret)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
from django.db import connection
from django_tenants.utils import schema_context
from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from factory_portal.accounts.services import user_invite
from factory_portal.observability import tracing
from factory_portal.observability.logging import ContextFilter, JsonFormatter


@pytest.fixture
def spans(db) -> Iterator[InMemorySpanExporter]:  # type: ignore[no-untyped-def]
    exporter = InMemorySpanExporter()
    provider = tracing.provider_build()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.instrument(provider)
    # The test's database connection was opened before instrumentation: trace it explicitly.
    connection.ensure_connection()
    PsycopgInstrumentor.instrument_connection(connection.connection, tracer_provider=provider)
    yield exporter
    PsycopgInstrumentor.uninstrument_connection(connection.connection)
    # uninstrument_connection leaves the connection flagged as instrumented, and the next
    # instrument_connection on the same (kept) test connection would then do nothing.
    connection.connection._is_instrumented_by_opentelemetry = False
    tracing.uninstrument()
    provider.shutdown()


class LogLines:
    def __init__(self) -> None:
        self.stream = io.StringIO()

    def records(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.stream.getvalue().splitlines()]

    def text(self) -> str:
        return self.stream.getvalue()


@pytest.fixture
def json_logs() -> Iterator[LogLines]:
    lines = LogLines()
    handler = logging.StreamHandler(lines.stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    yield lines
    root.removeHandler(handler)


@dataclass(frozen=True)
class InvitationLink:
    path: str  # /invite/<uidb64>/<token>/
    uidb64: str
    token: str


@pytest.fixture
def invitation(alpha, mailoutbox) -> InvitationLink:  # type: ignore[no-untyped-def]
    with schema_context(alpha.schema):
        link = user_invite(email="invited@alpha.test", role="member", origin="http://x").link
    path = urlsplit(link).path
    _, _, uidb64, token, _ = path.split("/")
    return InvitationLink(path=path, uidb64=uidb64, token=token)
