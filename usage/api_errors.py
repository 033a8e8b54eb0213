"""``GET /api/v1/errors`` (scope ``read``, or the browser session of a role that sees runs): error
groups over a range of the tenant's days, sorted, in cursor pages (``?page=`` numbered pages are
deprecated). The groups are counted afresh on each request, so the cursor is the number of groups
already listed (signed, like every API cursor). Calls
``usage.selectors.errors`` only; writes nothing."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param
from rest_framework.views import APIView

from factory_portal import periods
from factory_portal.accounts.authentication import Access, ApiAccess
from factory_portal.api import DayField, EnumField, iso_utc
from factory_portal.pagination import (
    BAD_CURSOR,
    PAGE_HELP,
    PAGE_PARAMETER,
    PageQuerySerializer,
    cursor_page_schema,
    cursor_read,
    deprecation_headers,
    page_response,
)
from factory_portal.tenants.connection import connection_zone
from usage.selectors import errors as error_selectors

DEFAULT_DAYS = 14


class ErrorQuerySerializer(PageQuerySerializer):
    start = DayField(
        required=False,
        help_text="first day (the tenant's, its time zone); default 13 days before end",
    )
    end = DayField(required=False, help_text="last day, inclusive; default today")
    sort = EnumField(choices=list(error_selectors.ERROR_SORTS), default="frequent")
    page = serializers.IntegerField(
        min_value=1, max_value=100_000, required=False, help_text=PAGE_HELP
    )

    def validate(self, attrs):  # type: ignore[no-untyped-def]
        end = attrs.get("end") or periods.local_date(timezone.now(), connection_zone())
        start = attrs.get("start") or end - timedelta(days=DEFAULT_DAYS - 1)
        if start > end:
            raise serializers.ValidationError({"start": "start must not be after end."})
        if (end - start).days + 1 > error_selectors.MAX_DAYS:
            raise serializers.ValidationError(
                {"start": f"A range covers at most {error_selectors.MAX_DAYS} days."}
            )
        attrs["start"], attrs["end"] = start, end
        attrs["offset"] = 0
        if attrs.get("cursor"):
            offset = cursor_read(attrs["cursor"], self.context["request"]).get("o")
            if not isinstance(offset, int) or offset < 0:
                raise serializers.ValidationError({"cursor": BAD_CURSOR})
            attrs["offset"] = offset
        return attrs


ERROR_GROUP = inline_serializer(
    "ErrorGroupSummary",
    {
        "fingerprint": serializers.CharField(),
        "type": serializers.CharField(),
        "message": serializers.CharField(help_text="normalised: ids, numbers, paths replaced"),
        "top_frame": serializers.CharField(),
        "count": serializers.IntegerField(help_text="errors in the range"),
        "runs": serializers.IntegerField(help_text="runs affected in the range"),
        "first_seen": serializers.DateTimeField(help_text="first error in the range"),
        "last_seen": serializers.DateTimeField(),
        "first_seen_ever": serializers.DateTimeField(),
        "templates": serializers.ListField(child=serializers.CharField()),
        "template_count": serializers.IntegerField(),
        "steps": serializers.ListField(child=serializers.CharField()),
        "step_count": serializers.IntegerField(),
        "trend": serializers.ListField(
            child=serializers.IntegerField(), help_text="errors per day of the range"
        ),
        "example_run_ids": serializers.ListField(child=serializers.CharField()),
    },
)
ERROR_PAGE = cursor_page_schema(
    "ErrorGroupPage",
    serializers.ListField(child=ERROR_GROUP),
    start=serializers.DateField(),
    end=serializers.DateField(),
    sort=serializers.CharField(),
    total=serializers.IntegerField(help_text="groups with errors in the range"),
    errors=serializers.IntegerField(help_text="errors in the range"),
)


class ErrorGroupsApi(APIView):
    access = ApiAccess(read=Access(area="runs", scope="read"))
    throttle_scope = "read"

    @extend_schema(
        operation_id="errors_list",
        summary="Error groups (same type, normalised message and top frame) over a range of days",
        parameters=[ErrorQuerySerializer, PAGE_PARAMETER],
        responses={200: ERROR_PAGE},
    )
    def get(self, request: Request) -> Response:
        form = ErrorQuerySerializer(data=request.query_params, context={"request": request})
        form.is_valid(raise_exception=True)
        data = form.validated_data
        limit, legacy_page = data["limit"], data.get("page")
        offset = (legacy_page - 1) * limit if legacy_page else data["offset"]
        result = error_selectors.error_groups(
            start=data["start"], end=data["end"], sort=data["sort"], per_page=limit, offset=offset
        )
        head = {
            "start": result.start.isoformat(),
            "end": result.end.isoformat(),
            "sort": result.sort,
            "total": result.total,
            "errors": result.errors,
        }
        rows = [_group_json(r) for r in result.rows]
        if legacy_page:
            following_page = legacy_page + 1 if legacy_page < result.pages else None
            return Response(
                {
                    **head,
                    "page": legacy_page,
                    "pages": result.pages,
                    "results": rows,
                    "next": following_page
                    and replace_query_param(request.build_absolute_uri(), "page", following_page),
                    "next_cursor": None,
                },
                headers=deprecation_headers(request),
            )
        following = offset + limit
        return page_response(
            request,
            rows,
            following={"o": following} if following < result.total else None,
            extra=head,
        )


def _group_json(r: error_selectors.ErrorGroupRow) -> dict[str, object]:
    return {
        "fingerprint": r.fingerprint,
        "type": r.type,
        "message": r.message,
        "top_frame": r.top_frame,
        "count": r.count,
        "runs": r.runs,
        "first_seen": iso_utc(r.first_seen),
        "last_seen": iso_utc(r.last_seen),
        "first_seen_ever": iso_utc(r.first_seen_ever),
        "templates": r.templates,
        "template_count": r.template_count,
        "steps": r.steps,
        "step_count": r.step_count,
        "trend": r.trend,
        "example_run_ids": r.example_runs,
    }
