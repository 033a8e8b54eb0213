"""``GET /api/v1/status`` on a tenant's site: the queue status (the tenant's runs and jobs waiting
and running, each queue's depth, processing rate, estimated wait and dead letters) and the health
indicators with their last-reported times. Scope ``read`` or a session that may see runs. Thin:
the Status page's selectors, serialized."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from factory_portal.accounts.authentication import Access, ApiAccess
from factory_portal.api import iso_utc
from runtime import status
from runtime.domain.health import Status
from usage.selectors import outcomes

HEALTH_STATUSES = [s.value for s in Status]

STATUS_RESPONSE = inline_serializer(
    "StatusResponse",
    {
        "generated_at": serializers.DateTimeField(),
        "overall": serializers.ChoiceField(choices=HEALTH_STATUSES),
        "indicators": inline_serializer(
            "HealthIndicator",
            {
                "key": serializers.ChoiceField(choices=list(status.INDICATORS)),
                "name": serializers.CharField(),
                "status": serializers.ChoiceField(choices=HEALTH_STATUSES),
                "reason": serializers.CharField(),
                "last_reported": serializers.DateTimeField(allow_null=True),
            },
            many=True,
        ),
        "runs": inline_serializer(
            "QueuedRuns",
            {
                "waiting": serializers.IntegerField(),
                "running": serializers.IntegerField(),
                "oldest_waiting_since": serializers.DateTimeField(allow_null=True),
                "jobs_waiting": serializers.IntegerField(),
                "jobs_running": serializers.IntegerField(),
            },
        ),
        "queues": inline_serializer(
            "QueueStatus",
            {
                "queue_name": serializers.CharField(),
                "depth": serializers.FloatField(allow_null=True),
                "processing_rate_per_s": serializers.FloatField(allow_null=True),
                "estimated_wait_s": serializers.FloatField(allow_null=True),
                "stalled": serializers.BooleanField(),
                "dlq_size": serializers.FloatField(allow_null=True),
                "reported_at": serializers.DateTimeField(),
            },
            many=True,
        ),
    },
)


class StatusApi(APIView):
    access = ApiAccess(read=Access(area="runs", scope="read"))

    @extend_schema(
        summary="Queue status and system health",
        description="The tenant's runs and jobs waiting and running, each queue's depth,"
        " processing rate (jobs/s), estimated wait (depth / rate; null when unknown or stalled)"
        " and dead-letter size, and the health indicators (control_plane, data_plane, queues,"
        " database: ok, degraded, down or unknown) with when each last reported.",
        responses={200: STATUS_RESPONSE},
    )
    def get(self, request: Request) -> Response:
        now = timezone.now()
        queues = status.queue_metrics(now=now)
        health = status.health(now=now, queues=queues)
        run_queue = outcomes.run_queue()
        return Response(
            {
                "generated_at": iso_utc(now),
                "overall": str(health.overall),
                "indicators": [
                    {
                        "key": i.key,
                        "name": i.name,
                        "status": str(i.status),
                        "reason": i.reason,
                        "last_reported": iso_utc(i.last_reported) if i.last_reported else None,
                    }
                    for i in health.indicators
                ],
                "runs": {
                    "waiting": run_queue.runs_waiting,
                    "running": run_queue.runs_running,
                    "oldest_waiting_since": iso_utc(run_queue.oldest_waiting_since)
                    if run_queue.oldest_waiting_since
                    else None,
                    "jobs_waiting": run_queue.jobs_waiting,
                    "jobs_running": run_queue.jobs_running,
                },
                "queues": [
                    {
                        "queue_name": q.queue_name,
                        "depth": q.wait.depth,
                        "processing_rate_per_s": q.wait.rate,
                        "estimated_wait_s": q.wait.seconds,
                        "stalled": q.wait.stalled,
                        "dlq_size": q.dlq_size,
                        "reported_at": iso_utc(q.reported_at),
                    }
                    for q in queues
                ],
            }
        )
