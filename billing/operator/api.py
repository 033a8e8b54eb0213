"""Operator API for allocation rules (operator host, operator session)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.operator.models import AllocationRule
from billing.operator.services.rules import (
    RULE_FIELDS,
    allocation_rule_create,
    allocation_rule_update,
)
from factory_portal.accounts.authentication import Access, ApiAccess
from factory_portal.api import problem_response
from factory_portal.error_lists import ErrorList
from factory_portal.errors import PROBLEM_CONTENT_TYPE
from factory_portal.pagination import CursorPage, PageQuerySerializer, cursor_page_schema


class RuleSerializer(serializers.ModelSerializer):
    class Meta:
        model = AllocationRule
        fields = ["id", *RULE_FIELDS, "version", "updated_at"]
        read_only_fields = ["id", "version", "updated_at"]


def _invalid(exc: ValidationError) -> Response:
    errors = [
        {"field": field, "message": "; ".join(messages)}
        for field, messages in exc.message_dict.items()
    ]
    return problem_response(
        status=422,
        title="Invalid rule",
        detail=errors[0]["message"],
        extra=ErrorList(errors).problem_members(),
    )


INVALID_RULE = {
    (422, PROBLEM_CONTENT_TYPE): OpenApiResponse(
        {"$ref": "#/components/schemas/Problem"},
        description="The rule does not hold together (e.g. a usage rule with an even driver);"
        " `errors` names the field.",
    )
}
# Only an operator's browser session (no API key, not even the platform key).
SESSION_ONLY = [{"cookieAuth": []}]

# Operators only, in a browser session; no API key may change how shared cost is allocated.
RULE_ACCESS = ApiAccess(
    read=Access(area="operator", scope=None), write=Access(area="operator", scope=None)
)


class RuleListApi(APIView):
    """``GET /api/v1/allocation-rules`` (by name, in cursor pages), ``POST`` to add one."""

    access = RULE_ACCESS

    @extend_schema(
        operation_id="allocation_rules_list",
        summary="The allocation rules",
        auth=SESSION_ONLY,
        parameters=[PageQuerySerializer],
        responses={200: cursor_page_schema("PaginatedRuleList", RuleSerializer(many=True))},
    )
    def get(self, request: Request) -> Response:
        pages = CursorPage()
        page = pages.paginate_queryset(AllocationRule.objects.order_by("name", "pk"), request, self)
        return pages.get_paginated_response(RuleSerializer(page, many=True).data)

    @extend_schema(
        operation_id="allocation_rules_create",
        summary="Add an allocation rule",
        auth=SESSION_ONLY,
        request=RuleSerializer,
        responses={201: RuleSerializer, **INVALID_RULE},
    )
    def post(self, request: Request) -> Response:
        serializer = RuleSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            rule = allocation_rule_create(**serializer.validated_data)
        except ValidationError as exc:
            return _invalid(exc)
        return Response(RuleSerializer(rule).data, status=201)


class RuleDetailApi(APIView):
    """``GET``/``PATCH /api/v1/allocation-rules/<id>`` (a change bumps the version)."""

    access = RULE_ACCESS
    queryset = AllocationRule.objects.all()  # names the missing object in a 404

    @extend_schema(
        operation_id="allocation_rules_retrieve",
        summary="One allocation rule",
        auth=SESSION_ONLY,
        responses={200: RuleSerializer},
    )
    def get(self, request: Request, pk: int) -> Response:
        return Response(RuleSerializer(get_object_or_404(AllocationRule, pk=pk)).data)

    @extend_schema(
        operation_id="allocation_rules_partial_update",
        summary="Change an allocation rule (a change bumps its version)",
        auth=SESSION_ONLY,
        request=RuleSerializer,
        responses={200: RuleSerializer, **INVALID_RULE},
    )
    def patch(self, request: Request, pk: int) -> Response:
        rule = get_object_or_404(AllocationRule, pk=pk)
        serializer = RuleSerializer(rule, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        try:
            rule = allocation_rule_update(rule=rule, **serializer.validated_data)
        except ValidationError as exc:
            return _invalid(exc)
        return Response(RuleSerializer(rule).data)
