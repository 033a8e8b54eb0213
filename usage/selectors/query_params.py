"""Parsing the aggregated-usage query from API query parameters into an ``aggregates.UsageQuery``
(start, end, granularity, grouping, filters, with the range limits of each granularity), and its
OpenAPI filter parameters.

It is the input side of ``usage.selectors.aggregates``: ``/api/v1/usage`` parses its query with it
and billing's ``/api/v1/costs`` extends it, so it lives beside the selector it feeds rather than in
a view module. It parses and validates only; it reads and writes nothing.
"""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers

from factory_portal.api import EnumField, EnumListField, MomentField
from usage.selectors import aggregates

SERIES_NAMES = {"hour": "Hourly", "day": "Daily", "week": "Weekly", "month": "Monthly"}


def _list(value: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v.strip() for v in value.split(",") if v.strip()))


class UsageQuerySerializer(serializers.Serializer):
    start = MomentField(required=False, allow_blank=True, help_text="ISO 8601; default 30 days ago")
    end = MomentField(
        required=False, allow_blank=True, help_text="ISO 8601, exclusive; default now"
    )
    granularity = EnumField(choices=aggregates.GRANULARITIES, default="day")
    group_by = EnumListField(
        choices=aggregates.DIMENSIONS, required=False, allow_blank=True, default=()
    )

    def validate(self, attrs):  # type: ignore[no-untyped-def]
        end = attrs.get("end") or timezone.now()
        start = attrs.get("start") or end - timedelta(days=30)
        if start >= end:
            raise serializers.ValidationError({"start": "start must be before end."})
        granularity = attrs["granularity"]
        if end - start > aggregates.MAX_RANGE[granularity]:
            raise serializers.ValidationError(
                {
                    "end": f"{SERIES_NAMES[granularity]} series cover at most "
                    f"{aggregates.MAX_RANGE[granularity].days} days; ask for a shorter range or a"
                    " coarser granularity."
                }
            )
        group_by = attrs.get("group_by", ())
        filters = {}
        for dimension in aggregates.DIMENSIONS:
            raw = self.initial_data.get(dimension)
            if raw and "\x00" in raw:
                raise serializers.ValidationError({dimension: "Null characters are not allowed."})
            if raw and (values := _list(raw)):  # blank (or only commas): not given, as elsewhere
                filters[dimension] = values
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
