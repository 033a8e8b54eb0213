"""API conventions shared by every endpoint: errors as ``application/problem+json`` (RFC 9457),
and the query fields for months, days and moments (parsed and bounded by ``periods``)."""

from __future__ import annotations

import logging
import time
from datetime import UTC, date, datetime
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from drf_spectacular.utils import extend_schema_field
from rest_framework import exceptions, renderers, serializers
from rest_framework.response import Response
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import exception_handler

from factory_portal import periods
from factory_portal.enums import enum_canonical, enum_choices_text
from factory_portal.error_lists import errors_bounded
from factory_portal.errors import PROBLEM_CONTENT_TYPE
from factory_portal.tenants.connection import connection_zone

logger = logging.getLogger(__name__)
CACHE_WARNING_EVERY_S = 60
_cache_warned_at = float("-inf")


class JSONRenderer(renderers.JSONRenderer):
    """DRF's JSON renderer (UTF-8 text as it is), escaping non-ASCII characters only when the
    body holds a lone surrogate: UTF-8 cannot encode one, and a refusal that quotes the client's
    input (an unknown field name, a value not among the choices) answered 500 for a body with
    ``"\\ud800"`` in it. Escaped, it is the same JSON text."""

    def render(
        self, data: Any, accepted_media_type: Any = None, renderer_context: Any = None
    ) -> bytes:
        try:
            body: bytes = super().render(data, accepted_media_type, renderer_context)
        except UnicodeEncodeError:
            body = _AsciiJSONRenderer().render(data, accepted_media_type, renderer_context)
        return body


class _AsciiJSONRenderer(renderers.JSONRenderer):
    ensure_ascii = True


def iso_utc(moment: datetime) -> str:
    """ISO 8601 in UTC with a ``Z``, as every API timestamp is written."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def problem_response(
    *,
    status: int,
    title: str,
    detail: str = "",
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body.update(extra or {})
    return Response(body, status=status, content_type=PROBLEM_CONTENT_TYPE, headers=headers)


def problem_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    # DRF answers Django's Http404 and PermissionDenied but hands them over as they are: as
    # its own exceptions they get a title and a detail like every other refusal.
    if isinstance(exc, Http404):
        view = context.get("view")
        model = getattr(getattr(view, "queryset", None), "model", None)
        name = model._meta.verbose_name if model is not None else ""
        lookup = getattr(view, "lookup_url_kwarg", None) or getattr(view, "lookup_field", "pk")
        key = (getattr(view, "kwargs", None) or {}).get(lookup)
        if model is not None and key is not None:
            exc = exceptions.NotFound(f"No {name} with id {str(key)[:64]!r} here.")
        else:
            exc = exceptions.NotFound(*exc.args)
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    response = exception_handler(exc, context)
    if response is None:
        return None
    title = "Error"
    detail = ""
    extra: dict[str, Any] = {}
    if isinstance(exc, exceptions.APIException):
        title = {
            400: "Bad request",
            401: "Unauthorized",
            403: "Forbidden",
            404: "Not found",
            405: "Method not allowed",
            406: "Not acceptable",
            413: "Payload too large",
            415: "Unsupported media type",
            429: "Too many requests",
        }.get(response.status_code) or str(exc.default_detail)
        if isinstance(response.data, dict) and set(response.data) == {"detail"}:
            value = response.data["detail"]  # a list when a serializer raised it on "detail"
            detail = " ".join(map(str, value)) if isinstance(value, list) else str(value)
        else:
            detail = "The request is invalid."
            extra["errors"], extra["errors_total"] = errors_bounded(response.data)
    return problem_response(
        status=response.status_code,
        title=title,
        detail=detail,
        extra=extra,
        headers={k: v for k, v in response.items() if k in {"WWW-Authenticate", "Retry-After"}},
    )


class BoundedListField(serializers.ListField):
    """A ``ListField`` that refuses a list longer than ``max_length`` before validating its
    items: DRF checks the length last, after building one error per bad item."""

    def to_internal_value(self, data: Any) -> list[Any]:
        if self.max_length is not None and isinstance(data, list) and len(data) > self.max_length:
            self.fail("max_length", max_length=self.max_length)
        return super().to_internal_value(data)


class EnumField(serializers.ChoiceField):
    """A choice in any letter case (``FAILED``, ``failed`` and ``Failed`` are ``Failed``), as the
    member is spelt; anything else is refused naming the allowed values. Every enumerated filter
    of the API is one of these (``enum_canonical`` is the rule)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not self.help_text:
            self.help_text = "any letter case"

    def to_internal_value(self, data: Any) -> Any:
        if data == "" and self.allow_blank:
            return ""
        allowed = self.choice_strings_to_values
        member = enum_canonical(str(data), allowed)
        if member is None:
            raise serializers.ValidationError(
                f"{str(data)[:64]!r} is not one of {enum_choices_text(allowed)} (any letter case)."
            )
        return self.choice_strings_to_values[member]


class EnumListField(serializers.CharField):
    """Comma-separated choices in any letter case, as a tuple of members without repeats (in the
    order given); an unknown one is refused naming the allowed values."""

    def __init__(self, *, choices: tuple[str, ...] | list[str], **kwargs: Any) -> None:
        self.choices = tuple(choices)
        kwargs.setdefault("help_text", f"comma-separated, any of: {', '.join(self.choices)}")
        super().__init__(**kwargs)

    # A ``tuple[str, ...]``, typed Any for the reason given at ``MonthField``.
    def to_internal_value(self, data: Any) -> Any:
        given = [v for v in super().to_internal_value(data).split(",") if v.strip()]
        members = [enum_canonical(v, self.choices) for v in given]
        unknown = [v.strip()[:64] for v, m in zip(given, members, strict=True) if m is None]
        if unknown:
            raise serializers.ValidationError(
                f"Unknown: {', '.join(unknown)}; the values are "
                f"{enum_choices_text(self.choices)} (any letter case)."
            )
        return tuple(dict.fromkeys(m for m in members if m is not None))


@extend_schema_field({"type": "string", "pattern": periods.MONTH_PATTERN, "example": "2026-10"})
class MonthField(serializers.CharField):
    """A month as ``YYYY-MM`` within the supported years, validated to its first day."""

    # A ``date``, typed Any: DRF's stubs fix a CharField's value as str (this field reads text as
    # CharField does, then parses it); callers read it from the untyped ``validated_data``.
    def to_internal_value(self, data: Any) -> Any:
        try:
            return periods.month_parse(super().to_internal_value(data))
        except periods.PeriodError as exc:
            raise serializers.ValidationError(str(exc)) from None


@extend_schema_field({"type": "string", "format": "date"})
class DayField(serializers.DateField):
    """A calendar day (``YYYY-MM-DD``) within the supported years."""

    def to_internal_value(self, value: Any) -> date:
        try:
            return periods.day_check(super().to_internal_value(value))
        except periods.PeriodError as exc:
            raise serializers.ValidationError(str(exc)) from None


@extend_schema_field({"type": "string", "format": "date-time"})
class MomentField(serializers.CharField):
    """An ISO 8601 date or date-time within the supported years, as aware UTC; blank means "not
    given" (``None``). A date alone is the tenant's day: it starts at the tenant's midnight (the
    zone of the connection's tenant; UTC outside one), as the pages' days do; a date-time
    without an offset is UTC."""

    # A ``datetime | None``, typed Any for the reason given at ``MonthField``.
    def to_internal_value(self, data: Any) -> Any:
        text = super().to_internal_value(data)
        if not text:
            return None
        try:
            return periods.moment_parse(text, day_zone=connection_zone())
        except periods.PeriodError as exc:
            raise serializers.ValidationError(str(exc)) from None


class PayloadTooLarge(exceptions.APIException):
    status_code = 413
    default_detail = "The request body is too large."
    default_code = "payload_too_large"


class LengthRequired(exceptions.APIException):
    status_code = 411
    default_detail = "Send the body with a Content-Length header."
    default_code = "length_required"


def request_body(request: Any, max_bytes: int) -> bytes:
    """The raw body, refused with 413 before reading when it is larger than ``max_bytes``. A
    chunked body (no Content-Length) is read from the server's stream up to the limit: Django
    reads a body by its Content-Length only, so it saw none and the batch was answered as empty
    (a review found a chunked OTLP export answered 200 and stored nothing)."""
    meta = request.META
    if (
        not meta.get("CONTENT_LENGTH")
        and "chunked" in meta.get("HTTP_TRANSFER_ENCODING", "").lower()
    ):
        if not meta.get("wsgi.input_terminated"):  # a server that does not end the stream itself
            raise LengthRequired(
                "This server reads a body by its Content-Length: send the header (a chunked "
                "body cannot be read here)."
            )
        chunked: bytes = meta["wsgi.input"].read(max_bytes + 1)
        if len(chunked) > max_bytes:
            raise PayloadTooLarge(f"At most {max_bytes:,} bytes are accepted.")
        return chunked
    try:
        declared = int(meta.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > max_bytes:
        raise PayloadTooLarge(
            f"The body has {declared:,} bytes; at most {max_bytes:,} bytes are accepted."
        )
    body: bytes = request.body
    if len(body) > max_bytes:
        raise PayloadTooLarge(f"At most {max_bytes:,} bytes are accepted.")
    return body


class ApiKeyRateThrottle(SimpleRateThrottle):
    """Requests per API key (or signed-in user) and minute, counted in the shared cache so every
    worker process sees the same count. Views choose a rate with ``throttle_scope`` (``read`` by
    default, ``ingest`` for the batch endpoints); over the limit the answer is 429 with
    ``Retry-After``."""

    scope_attr = "throttle_scope"

    def allow_request(self, request: Any, view: Any) -> bool:
        self.scope = getattr(view, self.scope_attr, "read")
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        try:
            return super().allow_request(request, view)
        except Exception as exc:  # the cache (Redis) is down: serve rather than fail every request
            global _cache_warned_at
            if time.monotonic() - _cache_warned_at > CACHE_WARNING_EVERY_S:  # not once a request
                _cache_warned_at = time.monotonic()
                logger.warning("rate limits not applied: cache unavailable (%r)", exc)
            return True

    def get_rate(self) -> str:
        from django.conf import settings

        return settings.API_RATES.get(self.scope or "read", settings.API_RATES["read"])

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        auth = getattr(request, "auth", None)
        prefix = getattr(auth, "prefix", None)
        if prefix:
            ident = f"key:{prefix}"
        elif request.user and request.user.is_authenticated:
            ident = f"user:{request.user.pk}"
        else:
            ident = f"ip:{self.get_ident(request)}"
        from factory_portal.tenants.connection import tenant_connection

        return f"throttle:{tenant_connection().schema_name}:{self.scope}:{ident}"


PROBLEM_STATUSES = {
    "400": "The request is invalid (the `errors` member names each field).",
    "401": "Missing, malformed, revoked or unknown API key for this host.",
    "403": "The key lacks the scope, or the user the role.",
    "404": "Nothing at this address (on a tenant's host: nothing of this tenant).",
    "405": "Method not allowed.",
    "429": "Too many requests for this key; retry after `Retry-After` seconds.",
    "503": "The database is not reachable right now; retry after `Retry-After` seconds.",
}
# Operations that take a body may also answer these.
BODY_PROBLEM_STATUSES = {
    "413": "The body is too large.",
    "415": "The body's Content-Type is not accepted.",
}


def problem_responses_hook(
    result: dict[str, Any], generator: Any, request: Any, public: bool
) -> dict[str, Any]:
    """drf-spectacular post-processing: every operation documents its error answers as
    ``application/problem+json`` (RFC 9457), so the schema lists every response."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = {
        "type": "object",
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "errors": {},
            "errors_total": {
                "type": "integer",
                "description": "How many problems there are; `errors` lists at most the first 100.",
            },
        },
        "required": ["type", "title", "status"],
    }
    reference = {"$ref": "#/components/schemas/Problem"}
    for path in result.get("paths", {}).values():
        for operation in path.values():
            responses = operation.setdefault("responses", {})
            statuses = PROBLEM_STATUSES
            if "requestBody" in operation:
                statuses = {**PROBLEM_STATUSES, **BODY_PROBLEM_STATUSES}
            for status, description in statuses.items():
                responses.setdefault(
                    status,
                    {
                        "description": description,
                        "content": {PROBLEM_CONTENT_TYPE: {"schema": reference}},
                    },
                )
    return result
