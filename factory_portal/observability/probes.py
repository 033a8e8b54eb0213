"""Probes of the services the portal depends on: the database and the Celery broker (queue depth,
workers). Every probe is bounded in time and failure-safe: a dead broker is reported as
unreachable within about a second, never raised. Used by the operator's health page and by the
``/metrics`` queue collector; ``/readyz`` (``factory_portal.health``) stays the machine probe.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from django.db import connection
from kombu.exceptions import ChannelError
from kombu.utils.url import maybe_sanitize_url

BROKER_TIMEOUT_SECONDS = 1.0
BROKER_READ_TIMEOUT_SECONDS = 2.0  # a broker that accepts connections but hangs
WORKER_PING_TIMEOUT_SECONDS = 1.0


@dataclass(frozen=True)
class DatabaseHealth:
    reachable: bool
    ms: float
    error: str = ""


@dataclass(frozen=True)
class QueueDepth:
    name: str
    messages: int  # waiting to be picked up by a worker


@dataclass(frozen=True)
class BrokerHealth:
    url: str  # password masked
    reachable: bool
    ms: float  # to connect and read the queues (the worker ping comes on top)
    error: str = ""
    queues: tuple[QueueDepth, ...] = ()
    in_flight: int | None = None  # delivered to a worker, not yet acknowledged (Redis only)
    workers: tuple[str, ...] | None = None  # None: not asked (the broker is down)
    workers_error: str = ""

    @property
    def waiting(self) -> int:
        return sum(q.messages for q in self.queues)


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


def database_health() -> DatabaseHealth:
    started = time.perf_counter()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # any failure means "unreachable"; say which
        return DatabaseHealth(False, _elapsed_ms(started), f"{type(exc).__name__}: {exc}")
    return DatabaseHealth(True, _elapsed_ms(started))


def _queue_names(app: Any) -> list[str]:
    names = {app.conf.task_default_queue}
    names.update(queue.name for queue in app.conf.task_queues or ())
    return sorted(names)


def _queue_depth(channel: Any, name: str) -> int:
    try:
        _, messages, _ = channel.queue_declare(queue=name, passive=True)
    except ChannelError:
        return 0  # no such queue (Redis drops an empty list): nothing is waiting in it
    return int(messages)


def broker_health(*, ping_workers: bool = True) -> BrokerHealth:
    """Queue depth of the Celery broker and the workers answering a ping, each bounded by about
    a second. Works with the Redis broker and with Kombu's file-system broker (the demo)."""
    from factory_portal.celery import app

    started = time.perf_counter()
    options = {
        "socket_connect_timeout": BROKER_TIMEOUT_SECONDS,
        "socket_timeout": BROKER_READ_TIMEOUT_SECONDS,
    }
    url = ""
    try:
        with app.connection_for_read(
            connect_timeout=BROKER_TIMEOUT_SECONDS, transport_options=options
        ) as conn:
            url = conn.as_uri()
            # No retries: an unreachable broker is the answer, not something to wait out.
            conn.ensure_connection(max_retries=0, timeout=BROKER_TIMEOUT_SECONDS)
            channel = conn.default_channel
            queues = tuple(QueueDepth(n, _queue_depth(channel, n)) for n in _queue_names(app))
            in_flight = None
            if conn.transport.driver_type == "redis":
                in_flight = int(channel.client.hlen(channel.unacked_key))
            broker_ms = _elapsed_ms(started)
            workers, workers_error = _workers(app, conn) if ping_workers else (None, "")
    except Exception as exc:  # a broken broker is a state to show, whatever the error
        return BrokerHealth(
            url=url or _masked(app.conf.broker_url),
            reachable=False,
            ms=_elapsed_ms(started),
            error=f"{type(exc).__name__}: {exc}".strip(),
        )
    return BrokerHealth(
        url=url,
        reachable=True,
        ms=broker_ms,
        queues=queues,
        in_flight=in_flight,
        workers=workers,
        workers_error=workers_error,
    )


def _workers(app: Any, conn: Any) -> tuple[tuple[str, ...] | None, str]:
    """Names of the workers that answer a ping within the timeout (none: an empty tuple)."""
    try:
        replies = app.control.inspect(timeout=WORKER_PING_TIMEOUT_SECONDS, connection=conn).ping()
    except Exception as exc:  # the queues were readable; say why workers could not be asked
        return None, f"{type(exc).__name__}: {exc}".strip()
    return tuple(sorted(replies or {})), ""


def _masked(url: str | None) -> str:
    return str(maybe_sanitize_url(url or ""))
