"""``GET /api/v1/usage``: aggregated token and infrastructure usage from the rollups
(scope ``read``, or the browser session)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from factory_portal.accounts.authentication import CanRead
from usage import aggregates


def _moment(value: str) -> datetime:
    """ISO 8601 date or date-time; naive values are UTC."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise serializers.ValidationError(
            f"{value!r} is not an ISO 8601 date or date-time (e.g. 2026-11-01 or"
            " 2026-11-01T00:00:00Z)."
        ) from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _list(value: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v.strip() for v in value.split(",") if v.strip()))


class UsageQuerySerializer(serializers.Serializer):
    start = serializers.CharField(required=False, help_text="ISO 8601; default 30 days ago")
    end = serializers.CharField(required=False, help_text="ISO 8601, exclusive; default now")
    granularity = serializers.ChoiceField(choices=aggregates.GRANULARITIES, default="day")
    group_by = serializers.CharField(
        required=False,
        default="",
        help_text=f"comma-separated, any of: {', '.join(aggregates.DIMENSIONS)}",
    )

    def validate_start(self, value: str) -> datetime:
        return _moment(value)

    def validate_end(self, value: str) -> datetime:
        return _moment(value)

    def validate(self, attrs):  # type: ignore[no-untyped-def]
        end = attrs.get("end") or timezone.now()
        start = attrs.get("start") or end - timedelta(days=30)
        if start >= end:
            raise serializers.ValidationError({"start": "start must be before end."})
        granularity = attrs["granularity"]
        if end - start > aggregates.MAX_RANGE[granularity]:
            raise serializers.ValidationError(
                {
                    "end": f"A {granularity} series covers at most "
                    f"{aggregates.MAX_RANGE[granularity].days} days; ask for a shorter range or a"
                    " coarser granularity."
                }
            )
        group_by = _list(attrs.get("group_by", ""))
        unknown = [d for d in group_by if d not in aggregates.DIMENSIONS]
        if unknown:
            raise serializers.ValidationError(
                {"group_by": f"Unknown dimension(s): {', '.join(unknown)}."}
            )
        filters = {}
        for dimension in aggregates.DIMENSIONS:
            raw = self.initial_data.get(dimension)
            if raw:
                filters[dimension] = _list(raw)
        return aggregates.UsageQuery(start, end, granularity, group_by, filters)


FILTER_PARAMETERS = [
    OpenApiParameter(
        name,
        OpenApiTypes.STR,
        description=f"only these {name} values (comma-separated)",
        required=False,
    )
    for name in aggregates.DIMENSIONS
]

USAGE_RESPONSE = inline_serializer(
    "UsageResponse",
    {
        "start": serializers.DateTimeField(),
        "end": serializers.DateTimeField(),
        "granularity": serializers.CharField(),
        "group_by": serializers.ListField(child=serializers.CharField()),
        "tokens": serializers.ListField(child=serializers.DictField()),
        "infrastructure": serializers.ListField(child=serializers.DictField()),
    },
)


class UsageApi(APIView):
    permission_classes = [CanRead]

    @extend_schema(
        summary="Aggregated token and infrastructure usage",
        parameters=[UsageQuerySerializer, *FILTER_PARAMETERS],
        responses={200: USAGE_RESPONSE},
    )
    def get(self, request: Request) -> Response:
        form = UsageQuerySerializer(data=request.query_params)
        form.is_valid(raise_exception=True)
        query: aggregates.UsageQuery = form.validated_data
        tokens = aggregates.token_usage(query)
        infra = aggregates.infrastructure_usage(query)
        for row in tokens:
            row["cost"] = f"{row['cost']:.10f}"
        for row in infra:
            row["quantity"] = f"{row['quantity']:.6f}"
        for row in (*tokens, *infra):
            row["period_start"] = _iso(row["period_start"])
        return Response(
            {
                "start": _iso(query.start),
                "end": _iso(query.end),
                "granularity": query.granularity,
                "group_by": list(query.group_by),
                "tokens": tokens,
                "infrastructure": infra,
            }
        )


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
