"""``/api/v1/savings``: what prompt caching saved and the savings recommendations (read: keys
with ``read``, users who may see costs), and dismissing a recommendation or undoing it (keys
with ``manage``, admins). Amounts are decimal strings in USD: caching figures to 10 places as
stored costs are, estimated monthly savings to the cent; rates are fractions (0..1) to 4 places.

Views parse, call ``billing.selectors.savings`` or one service, and serialize.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from billing import services
from billing.domain.savings import Recommendation
from billing.models import RecommendationDismissal
from billing.selectors.savings import savings_view
from factory_portal import periods, ranges
from factory_portal.accounts.authentication import Access, ApiAccess
from factory_portal.api import iso_utc
from factory_portal.money import quantize_cents
from factory_portal.tenants.connection import connection_zone

SAVINGS_MAX_DAYS = 92
COST_PLACES = Decimal("0.0000000001")
RATE_PLACES = Decimal("0.0001")


def _cost(value: Decimal) -> str:
    return str(value.quantize(COST_PLACES))


def _rate(value: Decimal | None) -> str | None:
    return None if value is None else str(value.quantize(RATE_PLACES))


def _evidence(value: Any, name: str = "") -> Any:
    """Evidence as JSON: rates to 4 places, prices as the book has them, costs to 10 places."""
    if isinstance(value, dict):
        return {key: _evidence(item, key) for key, item in value.items()}
    if isinstance(value, Decimal):
        if "rate" in name:
            return _rate(value)
        if name == "monthly_pairs":
            return str(value.quantize(Decimal("0.01")))
        return str(value.normalize()) if "price" in name else _cost(value)
    return value


def _recommendation(
    rec: Recommendation, dismissal: RecommendationDismissal | None = None
) -> dict[str, object]:
    return {
        "key": rec.key,
        "kind": rec.kind,
        "title": rec.title,
        "monthly_saving": str(quantize_cents(rec.monthly_saving)),
        "period": {"start": rec.period_start.isoformat(), "end": rec.period_end.isoformat()},
        "evidence": _evidence(rec.evidence),
        "dismissed": None
        if dismissal is None
        else {
            "by": dismissal.dismissed_by,
            "at": iso_utc(dismissal.dismissed_at),
            "note": dismissal.note,
        },
    }


RANGE_PARAMETERS = [
    OpenApiParameter(
        "range",
        str,
        enum=[*ranges.PRESET_LABELS, ranges.CUSTOM],
        description="the tenant's days: a preset (default 30d) or custom with from/to;"
        f" at most {SAVINGS_MAX_DAYS} days",
    ),
    OpenApiParameter("from", OpenApiTypes.DATE, description="range=custom: first day"),
    OpenApiParameter("to", OpenApiTypes.DATE, description="range=custom: last day (default today)"),
]


class SavingsApi(APIView):
    """``GET /api/v1/savings?range=30d``: caching savings per project and model, the cache-hit
    trend and the recommendations (listed and dismissed) with their evidence."""

    access = ApiAccess(read=Access(area="costs", scope="read"))
    throttle_scope = "read"

    @extend_schema(
        operation_id="savings",
        summary="Prompt-caching savings, cache-hit trend and savings recommendations",
        parameters=RANGE_PARAMETERS,
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request: Request) -> Response:
        unknown = sorted(set(request.query_params) - {*ranges.RANGE_PARAMS, "format"})
        if unknown:
            raise serializers.ValidationError(
                {unknown[0]: ["Unknown parameter: the savings take range, from and to."]}
            )
        today = periods.local_date(timezone.now(), connection_zone())
        chosen, problems = ranges.range_read(
            request.query_params, today=today, default="30d", max_days=SAVINGS_MAX_DAYS
        )
        if problems:  # each under its parameter, without what a page would show instead
            refused: dict[str, list[str]] = {}
            for problem in problems:
                refused.setdefault(problem.field, []).append(problem.api)
            raise serializers.ValidationError(refused)
        view = savings_view(tenant=connection.tenant, start=chosen.start, end=chosen.end)
        report = view.report
        total = report.caching_total
        return Response(
            {
                "start": report.start.isoformat(),
                "end": report.end.isoformat(),
                "currency": "USD",
                "caching": {
                    "saved": _cost(total.gross),
                    "cache_write_cost": _cost(total.premium),
                    "net": _cost(total.net),
                    "rows": [
                        {
                            "project": row.project,
                            "model": row.name,
                            "input_tokens": row.tokens.input_tokens,
                            "cached_input_tokens": row.tokens.cached_input_tokens,
                            "cache_write_tokens": row.tokens.cache_write_tokens,
                            "hit_rate": _rate(row.tokens.hit_rate),
                            "priced": row.priced,
                            "saved": _cost(row.saving.gross),
                            "cache_write_cost": _cost(row.saving.premium),
                            "net": _cost(row.saving.net),
                        }
                        for row in report.caching
                    ],
                },
                "hit_rate_trend": [
                    {
                        "model": model,
                        "days": [
                            {"day": day, "hit_rate": _rate(rate)} for day, rate in days.items()
                        ],
                    }
                    for model, days in report.hit_trend.items()
                ],
                "model_comparison": {
                    "start": report.comparison_start.isoformat(),
                    "end": report.comparison_end.isoformat(),
                },
                "recommendations": [_recommendation(rec) for rec in view.listed],
                "dismissed": [_recommendation(rec, d) for rec, d in view.dismissed],
            }
        )


class DismissSerializer(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")


class RecommendationDismissApi(APIView):
    """``POST`` dismisses the recommendation ``key`` (hidden from the list, shown under
    dismissed); ``DELETE`` undoes it."""

    access = ApiAccess(write=Access(area="admin", scope="manage"))

    @extend_schema(
        operation_id="savings_recommendation_dismiss",
        summary="Dismiss a savings recommendation",
        request=DismissSerializer,
        responses={
            201: inline_serializer(
                "RecommendationDismissal",
                {
                    "key": serializers.CharField(),
                    "dismissed_by": serializers.CharField(),
                    "dismissed_at": serializers.DateTimeField(),
                    "note": serializers.CharField(),
                },
            )
        },
    )
    def post(self, request: Request, key: str) -> Response:
        form = DismissSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        auth = request.auth
        by = (
            f"API key {auth.prefix}"
            if hasattr(auth, "prefix")
            else str(getattr(request.user, "email", "?"))
        )
        try:
            dismissal = services.recommendation_dismiss(
                key=key, by=by, note=form.validated_data["note"].strip()
            )
        except ValidationError as exc:
            raise serializers.ValidationError({"key": exc.messages}) from exc
        return Response(
            {
                "key": dismissal.key,
                "dismissed_by": dismissal.dismissed_by,
                "dismissed_at": iso_utc(dismissal.dismissed_at),
                "note": dismissal.note,
            },
            status=status.HTTP_201_CREATED,
        )

    @extend_schema(
        operation_id="savings_recommendation_restore",
        summary="Undo a dismissal: the recommendation is listed again",
        responses={204: None},
    )
    def delete(self, request: Request, key: str) -> Response:
        if not services.recommendation_restore(key=key):
            raise NotFound("This recommendation is not dismissed.")
        return Response(status=status.HTTP_204_NO_CONTENT)
