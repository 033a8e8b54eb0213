"""The alerts API of a tenant's host: ``GET /api/v1/alerts`` (incidents, filtered, in pages),
``GET /api/v1/alerts/{id}`` (with its delivery log), ``POST /api/v1/alerts/{id}/ack``, and
``GET/POST /api/v1/silences``, ``DELETE /api/v1/silences/{id}`` (ends it). Reading takes the
``read`` scope (or any signed-in user, as the alerts page); acting takes ``manage`` (or a member's
or admin's session, as on the page). Thin: validate, call a selector or a service, serialize.
Times are UTC."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import generics, serializers, status
from rest_framework.exceptions import APIException, NotFound
from rest_framework.exceptions import ValidationError as ApiValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from alerts.oncall import selectors
from alerts.oncall.domain.rules import INCIDENT_RULES, SEVERITIES
from alerts.oncall.domain.silence_input import DURATIONS, SilenceInputError, matchers_check
from alerts.oncall.models import Incident, Silence
from alerts.oncall.services.incidents import IncidentResolved, incident_acknowledge
from alerts.oncall.services.silences import MATCHERS_MAX, silence_create, silence_expire
from factory_portal.accounts.authentication import Access, ApiAccess
from factory_portal.accounts.models import ApiKey
from factory_portal.api import EnumField, MomentField
from factory_portal.errors import PROBLEM_CONTENT_TYPE

READ = Access(area="signed_in", scope="read")
ACT = Access(area="oncall", scope="manage")


def _actor(request: Request) -> str:
    """Who acts, as the incident or silence records it: the user's e-mail, or the API key."""
    if isinstance(request.auth, ApiKey):
        return f"API key {request.auth.name} ({request.auth.prefix})"
    return str(getattr(request.user, "email", "") or request.user)


class SilenceSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    rule = serializers.CharField(help_text="blank: every rule")
    matchers = serializers.DictField(
        child=serializers.CharField(), help_text="labels an incident must all have"
    )
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField()
    reason = serializers.CharField()
    created_by = serializers.CharField()
    created_at = serializers.DateTimeField()
    active = serializers.SerializerMethodField()

    def get_active(self, silence: Silence) -> bool:
        now = self.context.get("now") or timezone.now()
        return bool(silence.starts_at <= now < silence.ends_at)


class IncidentSerializer(serializers.Serializer):
    """One ``selectors.Row``: an incident and the silence muting it."""

    id = serializers.IntegerField(source="incident.pk")
    rule = serializers.CharField(source="incident.rule")
    title = serializers.SerializerMethodField()
    severity = serializers.CharField(source="incident.severity")
    state = serializers.CharField(source="incident.state", help_text="pending, firing, resolved")
    silenced = serializers.SerializerMethodField(
        help_text="open and muted by an active silence (resolved: was muted when it fired)"
    )
    summary = serializers.CharField(source="incident.summary")
    labels = serializers.DictField(source="incident.labels", child=serializers.CharField())
    value = serializers.FloatField(source="incident.value", allow_null=True)
    threshold = serializers.FloatField(source="incident.threshold")
    peak = serializers.FloatField(source="incident.peak", allow_null=True)
    unit = serializers.SerializerMethodField()
    started_at = serializers.DateTimeField(source="incident.started_at", help_text="pending since")
    fired_at = serializers.DateTimeField(source="incident.fired_at", allow_null=True)
    resolved_at = serializers.DateTimeField(source="incident.resolved_at", allow_null=True)
    acknowledged_at = serializers.DateTimeField(source="incident.acknowledged_at", allow_null=True)
    acknowledged_by = serializers.CharField(source="incident.acknowledged_by")
    silence = SilenceSerializer(allow_null=True)
    url = serializers.SerializerMethodField(help_text="the alert's page on this host")

    def get_title(self, row: selectors.Row) -> str:
        return row.rule.title if row.rule else row.incident.rule

    def get_silenced(self, row: selectors.Row) -> bool:
        return row.silence is not None

    def get_unit(self, row: selectors.Row) -> str:
        return row.rule.unit.strip() if row.rule else ""

    def get_url(self, row: selectors.Row) -> str:
        return f"/alerts/{row.incident.pk}/"


class PageSerializer(serializers.Serializer):
    event = serializers.CharField(help_text="trigger, acknowledge, resolve")
    route = serializers.CharField(source="route.name")
    channel = serializers.CharField(source="route.channel")
    status = serializers.CharField(help_text="pending, sent, failed")
    attempts = serializers.IntegerField()
    last_status_code = serializers.IntegerField(allow_null=True)
    last_error = serializers.CharField()
    created_at = serializers.DateTimeField()
    sent_at = serializers.DateTimeField(allow_null=True)
    next_attempt_at = serializers.DateTimeField()


class IncidentDetailSerializer(IncidentSerializer):
    condition = serializers.CharField(help_text="the rule's condition with the threshold used")
    action = serializers.CharField(help_text="what the on-call person does")
    pages = PageSerializer(many=True, help_text="what was sent to each route, oldest first")


def _detail(pk: int) -> dict[str, Any]:
    detail = selectors.incident_detail(pk, now=timezone.now())
    if detail is None:
        raise NotFound(f"No alert with id {pk} here.")
    row = detail.row
    return {
        **IncidentSerializer(row).data,
        "condition": detail.condition,
        "action": detail.rule.action if detail.rule else "",
        "pages": PageSerializer(detail.pages, many=True).data,
    }


class IncidentQuerySerializer(serializers.Serializer):
    state = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=64,
        help_text="pending, firing or resolved (any letter case)",
    )
    rule = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=64,
        help_text=f"a rule key, any letter case: {', '.join(INCIDENT_RULES)}",
    )
    severity = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=64,
        help_text=f"{', '.join(SEVERITIES)} (any letter case)",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        try:
            attrs["filters"] = selectors.filters_parse(
                rule=attrs.get("rule", ""),
                severity=attrs.get("severity", ""),
                state=attrs.get("state", ""),
            )
        except selectors.FilterError as exc:
            raise serializers.ValidationError({exc.field: str(exc)}) from None
        return attrs


class IncidentListApi(generics.ListAPIView):
    """``GET /api/v1/alerts``: incidents, newest first, in cursor pages (``CursorPage``)."""

    access = ApiAccess(read=READ)
    serializer_class = IncidentSerializer

    def get_queryset(self):  # type: ignore[no-untyped-def]
        form = IncidentQuerySerializer(data=self.request.query_params)
        form.is_valid(raise_exception=True)
        return selectors.incidents(form.validated_data["filters"])

    def paginate_queryset(self, queryset):  # type: ignore[no-untyped-def]
        page = super().paginate_queryset(queryset)
        return None if page is None else selectors.incident_rows(list(page), now=timezone.now())

    @extend_schema(
        operation_id="alerts_list",
        summary="Runtime alerts (incidents), newest first, with their silence",
        parameters=[IncidentQuerySerializer],
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class IncidentDetailApi(APIView):
    """``GET /api/v1/alerts/{id}``."""

    access = ApiAccess(read=READ)

    @extend_schema(
        operation_id="alerts_retrieve",
        summary="One alert: figures, timeline, silence and what was sent to each route",
        responses={200: IncidentDetailSerializer},
    )
    def get(self, request: Request, pk: int) -> Response:
        return Response(_detail(pk))


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the state of the resource."
    default_code = "conflict"


CONFLICT = OpenApiResponse(
    description="The alert is resolved and nobody acknowledged it: nothing to acknowledge.",
    response=OpenApiTypes.OBJECT,
)


class IncidentAckApi(APIView):
    """``POST /api/v1/alerts/{id}/ack`` (scope ``manage``): the first acknowledgement counts."""

    access = ApiAccess(write=ACT)

    @extend_schema(
        operation_id="alerts_acknowledge",
        summary="Acknowledge an alert (once; PagerDuty routes that got it are told)",
        request=None,
        responses={200: IncidentDetailSerializer, (409, PROBLEM_CONTENT_TYPE): CONFLICT},
    )
    def post(self, request: Request, pk: int) -> Response:
        try:
            incident_acknowledge(incident_id=pk, by=_actor(request), now=timezone.now())
        except Incident.DoesNotExist:
            raise NotFound(f"No alert with id {pk} here.") from None
        except IncidentResolved as exc:
            raise Conflict(str(exc)) from None
        return Response(_detail(pk))


class SilenceQuerySerializer(serializers.Serializer):
    state = EnumField(
        choices=["active", "ended"], required=False, help_text="any letter case; omitted: both"
    )


class SilenceInSerializer(serializers.Serializer):
    rule = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=64,
        default="",
        help_text="a rule key (any letter case); blank: every rule",
    )
    matchers = serializers.DictField(
        child=serializers.CharField(allow_blank=True, max_length=1000),
        required=False,
        default=dict,
        help_text=f"labels an incident must all have, at most {MATCHERS_MAX}",
    )
    ends_at = MomentField(
        required=False,
        help_text="when it ends (ISO 8601; a date-time without an offset is UTC, a date alone the"
        " tenant's midnight)",
    )
    duration = serializers.ChoiceField(
        choices=list(DURATIONS), required=False, help_text="instead of ends_at: from now"
    )
    reason = serializers.CharField(max_length=300)

    def validate_matchers(self, matchers: dict[str, str]) -> dict[str, str]:
        try:
            return matchers_check(matchers, max_count=MATCHERS_MAX)
        except SilenceInputError as exc:
            raise serializers.ValidationError(str(exc)) from None

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        ends_at, duration = attrs.get("ends_at"), attrs.get("duration")
        if (ends_at is None) == (duration is None):
            raise serializers.ValidationError(
                {"ends_at": "Give either ends_at or duration (1h, 4h, 1d)."}
            )
        attrs["ends_at"] = ends_at or timezone.now() + DURATIONS[duration]
        attrs["rule"] = attrs.get("rule", "").strip().lower()
        return attrs


@extend_schema_view(
    get=extend_schema(
        operation_id="silences_list",
        summary="Silences, ending last first (active and ended)",
        parameters=[SilenceQuerySerializer],
    ),
    post=extend_schema(
        operation_id="silences_create",
        summary="Silence the alerts of a rule (or any) and label set until a time",
        request=SilenceInSerializer,
        responses={201: SilenceSerializer},
    ),
)
class SilenceListApi(generics.ListAPIView):
    """``GET/POST /api/v1/silences``: read with ``read``, create with ``manage``."""

    access = ApiAccess(read=READ, write=ACT)
    serializer_class = SilenceSerializer

    def get_queryset(self):  # type: ignore[no-untyped-def]
        form = SilenceQuerySerializer(data=self.request.query_params)
        form.is_valid(raise_exception=True)
        return selectors.silences(state=form.validated_data.get("state"), now=timezone.now())

    def post(self, request: Request) -> Response:
        form = SilenceInSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        try:
            silence = silence_create(
                rule=data["rule"],
                matchers=data["matchers"],
                ends_at=data["ends_at"],
                reason=data["reason"],
                created_by=_actor(request),
                now=timezone.now(),
            )
        except DjangoValidationError as exc:
            errors = exc.message_dict if hasattr(exc, "error_dict") else exc.messages
            raise ApiValidationError(errors) from None
        return Response(SilenceSerializer(silence).data, status=status.HTTP_201_CREATED)


class SilenceDetailApi(APIView):
    """``DELETE /api/v1/silences/{id}`` (scope ``manage``): ends the silence now (it stays
    listed as ended)."""

    access = ApiAccess(write=ACT)

    @extend_schema(
        operation_id="silences_expire",
        summary="End a silence now",
        responses={204: None},
    )
    def delete(self, request: Request, pk: int) -> Response:
        silence = Silence.objects.filter(pk=pk).first()
        if silence is None:
            raise NotFound(f"No silence with id {pk} here.")
        silence_expire(silence, now=timezone.now())
        return Response(status=status.HTTP_204_NO_CONTENT)
