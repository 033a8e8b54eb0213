"""Celery hooks: the enqueuing request's id travels with the task, each task's logs and spans
carry its tenant, and every task's duration and failure is counted."""

from __future__ import annotations

import time
from typing import Any

from celery import signals

from factory_portal.observability import context, metrics, tracing
from factory_portal.observability.masking import secret_routes_prepare

REQUEST_ID_HEADER = "portal_request_id"
# task id -> (start time, tokens that restore the context the task found: an eager task runs
# inside the request that enqueued it and must leave that request's context as it was).
_running: dict[str, tuple[float, context.Restore]] = {}


@signals.worker_process_init.connect(weak=False)
@signals.worker_init.connect(weak=False)
def _secret_routes_build(**kwargs: Any) -> None:
    """A worker compiles the secret routes before its first task, as web processes do when they
    load the middleware (``masking.secret_routes_prepare``)."""
    secret_routes_prepare()


@signals.before_task_publish.connect(weak=False)
def _request_id_attach(headers: dict[str, Any] | None = None, **kwargs: Any) -> None:
    request_id = context.get("request_id")
    if headers is not None and request_id:
        headers.setdefault(REQUEST_ID_HEADER, request_id)


@signals.task_prerun.connect(weak=False)
def _task_started(task_id: str, task: Any, **kwargs: Any) -> None:
    request = task.request
    request_id = (request.headers or {}).get(REQUEST_ID_HEADER) or getattr(
        request, REQUEST_ID_HEADER, None
    )
    values = {"request_id": request_id or context.get("request_id") or task_id}
    values["tenant_id"] = context.tenant_label()
    _running[task_id] = (time.perf_counter(), context.push(**values))
    tracing.span_tenant_set(values["tenant_id"])


@signals.task_postrun.connect(weak=False)
def _task_finished(task_id: str, task: Any, state: str | None = None, **kwargs: Any) -> None:
    started, restore = _running.pop(task_id, (None, []))
    context.pop(restore)
    if started is not None:
        elapsed = time.perf_counter() - started
        metrics.guarded(
            lambda: metrics.CELERY_TASK_DURATION.labels(task.name, state or "UNKNOWN").observe(
                elapsed
            )
        )


@signals.task_failure.connect(weak=False)
def _task_failed(sender: Any = None, **kwargs: Any) -> None:
    name = getattr(sender, "name", "unknown")
    metrics.guarded(lambda: metrics.CELERY_TASK_FAILURES.labels(name).inc())
