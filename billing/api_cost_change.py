"""``GET /api/v1/costs/change`` (scope ``read``; users who may see the costs page): why AI cost
changed between two periods of the tenant's days, in dollars. Parses the query, calls
``billing.selectors.cost_change`` and serializes; amounts are decimal strings to the cent."""

from __future__ import annotations

from django.db import connection
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.domain.cost_change import CostChange
from billing.selectors.cost_change import CompareError, compare_range, period_cost_change
from factory_portal import periods, ranges
from factory_portal.accounts.authentication import Access, ApiAccess
from factory_portal.api import DayField, EnumField
from factory_portal.tenants.connection import connection_zone


class CostChangeQuerySerializer(serializers.Serializer):
    range = EnumField(
        choices=list(ranges.PRESET_LABELS),
        required=False,
        help_text="a preset of the tenant's days ending today; default 30d (from/to win)",
    )
    compare_from = DayField(
        required=False, help_text="first day compared against; default the previous period"
    )
    compare_to = DayField(required=False, help_text="last day compared against (inclusive)")

    def validate(self, attrs):  # type: ignore[no-untyped-def]
        today = periods.local_date(timezone.now(), connection_zone())
        start, end = attrs.pop("from", None), attrs.pop("to", None)
        if start or end:
            end = end or today
            default = ranges.preset_range(ranges.DEFAULT, today)
            start = start or end - (default.end - default.start)
            if start > end:
                raise serializers.ValidationError({"from": f"from ({start}) is after to ({end})."})
            if (end - start).days + 1 > ranges.MAX_DAYS:
                raise serializers.ValidationError(
                    {"from": f"A period covers at most {ranges.MAX_DAYS} days."}
                )
            chosen = ranges.DayRange(start, end)
        else:
            chosen = ranges.preset_range(attrs.get("range") or ranges.DEFAULT, today)
        try:
            before = compare_range(chosen, attrs.get("compare_from"), attrs.get("compare_to"))
        except CompareError as exc:
            raise serializers.ValidationError({"compare_from": str(exc)}) from None
        return before, chosen


# ``from`` is a Python keyword: declared after the class body.
CostChangeQuerySerializer._declared_fields["from"] = DayField(
    required=False, help_text="first day of the period explained (the tenant's, inclusive)"
)
CostChangeQuerySerializer._declared_fields["to"] = DayField(
    required=False, help_text="last day of the period explained (inclusive); default today"
)

EXAMPLE = {
    "before": {"from": "2026-10-02", "to": "2026-10-31", "cost": "1000.00"},
    "after": {"from": "2026-11-01", "to": "2026-11-30", "cost": "1450.00"},
    "change": "450.00",
    "parts": [
        {
            "part": "cache",
            "label": "Prompt-cache hit rate",
            "amount": "300.00",
            "lines": [
                {
                    "text": "cache hits on claude-sonnet-4-5 fell from 62% to 18%: +$300.00",
                    "amount": "300.00",
                    "provider": "anthropic",
                    "model": "claude-sonnet-4-5",
                }
            ],
        }
    ],
    "currency": "USD",
}


def change_json(
    change: CostChange, before: ranges.DayRange, after: ranges.DayRange
) -> dict[str, object]:
    return {
        "before": {
            "from": before.start.isoformat(),
            "to": before.end.isoformat(),
            "cost": f"{change.before:.2f}",
        },
        "after": {
            "from": after.start.isoformat(),
            "to": after.end.isoformat(),
            "cost": f"{change.after:.2f}",
        },
        "change": f"{change.change:.2f}",
        "parts": change.parts_json(),
        "currency": "USD",
    }


class CostChangeApi(APIView):
    """Volume, mix, cache, unit price and waste parts of the change of AI cost from the period
    before to the period after; the parts add up to the change to the cent."""

    access = ApiAccess(read=Access(area="costs", scope="read"))

    @extend_schema(
        operation_id="costs_change",
        summary="Why AI cost changed between two periods, in dollars",
        parameters=[CostChangeQuerySerializer],
        responses={200: OpenApiTypes.OBJECT},
        examples=[OpenApiExample("cache hits fell", value=EXAMPLE, response_only=True)],
    )
    def get(self, request: Request) -> Response:
        form = CostChangeQuerySerializer(data=request.query_params)
        form.is_valid(raise_exception=True)
        before, after = form.validated_data
        change = period_cost_change(
            tenant=connection.tenant,
            before=(before.start, before.end),
            after=(after.start, after.end),
        )
        return Response(change_json(change, before, after))
