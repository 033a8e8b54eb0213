"""gunicorn settings of the production command (``bin/serve``); every value can be changed with
the environment variable named next to it.

- ``gthread`` workers (``WEB_CONCURRENCY`` processes x ``WEB_THREADS`` threads; 4 a core x 1 by
  default): a kept-alive connection waits in the worker's poller, not in a thread.
- Each worker loads the application itself (no ``preload_app``), so tracing's exporter thread and
  the database connections belong to the worker that uses them.
- HTTP requests are parsed by gunicorn's Python parser (``http_parser``; see there).
- Graceful shutdown: on SIGTERM gunicorn stops accepting, lets requests in flight finish for up
  to ``GRACEFUL_TIMEOUT`` seconds, then exits.
- Logs are the portal's JSON lines (gunicorn's own loggers included); the portal writes one
  access line per request itself, so gunicorn's access log is off.
- Multi-process metrics: a worker that exits is marked dead for Prometheus' live gauges.
"""

from __future__ import annotations

import os
from typing import Protocol

from factory_portal.observability.log_config import logging_config

_cores = os.cpu_count() or 1

bind = os.environ.get(
    "BIND", f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
)
worker_class = "gthread"
# Processes of one thread each: threads of one process take turns holding Python's interpreter
# lock, and on a 2-core machine under mixed load 8 x 1 spent about a tenth less CPU a request
# than 4 x 4 (README, Faster ingest, eleventh pass). Four a core, so that a slow request (an
# export, a streamed CSV) or a wait on PostgreSQL leaves other processes free; the connections
# its own process accepted wait behind it (a buffering proxy in front spreads them).
workers = int(os.environ.get("WEB_CONCURRENCY", min(4 * _cores, 16)))
threads = int(os.environ.get("WEB_THREADS", 1))
timeout = int(os.environ.get("WEB_TIMEOUT", 60))
graceful_timeout = int(os.environ.get("GRACEFUL_TIMEOUT", 30))
keepalive = 5
# gunicorn's Python parser, even where its C parser (the "fast" extra, gunicorn_h1c) is
# installed, which "auto" would take: in gunicorn 25.3 the C parser never answers
# "Expect: 100-continue" (curl asks for it on large bodies: a 3,000-event batch took 1.0 s
# instead of 0.03), takes SCRIPT_NAME/PATH_INFO headers from any client and skips
# secure_scheme_headers. It saved about 1 ms of CPU a request (README, eleventh pass).
http_parser = os.environ.get("WEB_HTTP_PARSER", "python")
# Workers are replaced now and then, so that slow memory growth never accumulates.
max_requests = int(os.environ.get("WEB_MAX_REQUESTS", 5000))
max_requests_jitter = max_requests // 10
preload_app = False
# gunicorn 25's control socket (one per user by default, shared by every instance) is not used.
control_socket_disable = True
accesslog = None
errorlog = "-"
logconfig_dict = logging_config(
    level=os.environ.get("LOG_LEVEL", "INFO"), fmt=os.environ.get("LOG_FORMAT", "json")
)
# Only the local proxy may say a request came over HTTPS (with PORTAL_BEHIND_TLS_PROXY=1).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")


class _Worker(Protocol):
    """What ``child_exit`` reads of gunicorn's worker (gunicorn ships no types)."""

    pid: int


def child_exit(server: object, worker: _Worker) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
