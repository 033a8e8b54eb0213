"""One way to page through a list on the JSON API: every list answers
``{"results": [...], "next": <URL or null>, "next_cursor": <cursor or null>}`` and takes
``cursor`` (the last answer's ``next_cursor``) and ``limit`` (1 to 200, default 50).

A cursor is opaque and signed for the tenant and the list it came from: it cannot be forged or
edited, and one from another tenant's host or another list is refused (400) rather than read.
``CursorPage`` is the DRF pagination of the generic list views (a keyset on the queryset's own
ordering, DRF's ``CursorPagination``); ``page_response`` and ``cursor_read`` serve the lists
that keep their own keyset or offset (runs, error groups). ``?page=N`` of the numbered pages
the lists had before still answers the old ``count``/``next``/``previous`` shape (and
``next_cursor`` null: ``next`` is the next numbered page), marked with a ``Deprecation``
header. ``numbered_page`` is the HTML pages' ``?page=N`` (a page that is not one is said, and
the first shown), ``query_keeping`` the rest of the query string its links keep. Knows no app's
models."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib import parse

from django.core import signing
from django.core.exceptions import ImproperlyConfigured
from django.core.paginator import EmptyPage, Page, PageNotAnInteger, Paginator
from drf_spectacular.utils import OpenApiParameter, inline_serializer
from rest_framework import serializers
from rest_framework.pagination import Cursor, CursorPagination, PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param

from factory_portal.tenants.connection import tenant_connection

LIMIT_DEFAULT = 50
LIMIT_MAX = 200
CURSOR_MAX_LENGTH = 2000
# RFC 9745: the numbered pages (``?page=``) are deprecated since this moment (2026-12-01 UTC).
PAGE_DEPRECATED_AT = 1_796_083_200
DOCS_PATH = "/api/docs/"
BAD_CURSOR = "Not a cursor of this list; start again without it."

CURSOR_HELP = "the `next_cursor` of the previous answer (opaque); omitted: the first page"
LIMIT_HELP = f"rows a page, 1 to {LIMIT_MAX}"
NEXT_HELP = "this list's next page (same filters); null on the last page"
NEXT_CURSOR_HELP = "pass as `cursor` for the next page; null on the last page"
PAGE_HELP = (
    "deprecated: numbered pages with `count`/`next`/`previous`, answered with a `Deprecation`"
    " header; use `cursor`"
)


class PageQuerySerializer(serializers.Serializer):  # type: ignore[type-arg]
    """The paging parameters, for list views that parse their own query (extend it)."""

    cursor = serializers.CharField(
        required=False, allow_blank=True, max_length=CURSOR_MAX_LENGTH, help_text=CURSOR_HELP
    )
    limit = serializers.IntegerField(
        min_value=1, max_value=LIMIT_MAX, default=LIMIT_DEFAULT, help_text=LIMIT_HELP
    )


PAGE_PARAMETER = OpenApiParameter(
    "page", int, OpenApiParameter.QUERY, required=False, deprecated=True, description=PAGE_HELP
)


def _salt(request: Request) -> str:
    return f"factory_portal.pagination:{tenant_connection().schema_name}:{request.path}"


def cursor_sign(payload: dict[str, Any], request: Request) -> str:
    """``payload`` as an opaque cursor, valid only for this tenant and this list (path)."""
    return signing.dumps(payload, salt=_salt(request), compress=True)


def cursor_read(raw: str, request: Request) -> dict[str, Any]:
    """The payload of a cursor that ``cursor_sign`` made for this tenant and list; a 400 naming
    ``cursor`` for anything else (edited, another tenant's, another list's, or not one)."""
    try:
        payload = signing.loads(raw, salt=_salt(request))
    except signing.BadSignature as exc:
        raise serializers.ValidationError({"cursor": BAD_CURSOR}) from exc
    if not isinstance(payload, dict):
        raise serializers.ValidationError({"cursor": BAD_CURSOR})
    return payload


def next_link(request: Request, token: str | None) -> str | None:
    """This request's URL for the page after it (the same filters, ``cursor=token``)."""
    if token is None:
        return None
    url = remove_query_param(request.build_absolute_uri(), "page")
    return str(replace_query_param(url, "cursor", token))


def page_response(
    request: Request,
    results: Sequence[Any],
    *,
    following: dict[str, Any] | None,
    extra: dict[str, Any] | None = None,
) -> Response:
    """The answer of a list: ``extra`` members (a list's own, e.g. its range), then the page;
    ``following`` is the cursor payload of the next page, None on the last."""
    token = None if following is None else cursor_sign(following, request)
    return Response(
        {
            **(extra or {}),
            "results": list(results),
            "next": next_link(request, token),
            "next_cursor": token,
        }
    )


def deprecation_headers(request: Request) -> dict[str, str]:
    """Headers of an answer to ``?page=``: deprecated (RFC 9745), its successor the same list
    without ``page`` (cursor pages), documented at the API docs."""
    successor = remove_query_param(request.build_absolute_uri(), "page")
    return {
        "Deprecation": f"@{PAGE_DEPRECATED_AT}",
        "Link": (
            f'<{successor}>; rel="successor-version", '
            f'<{request.build_absolute_uri(DOCS_PATH)}>; rel="deprecation"'
        ),
    }


def page_response_schema(results: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI schema of a page whose ``results`` are ``results`` (a schema)."""
    return {
        "type": "object",
        "required": ["results", "next", "next_cursor"],
        "properties": {
            "results": {"type": "array", "items": results},
            "next": {
                "type": "string",
                "nullable": True,
                "format": "uri",
                "description": NEXT_HELP,
            },
            "next_cursor": {
                "type": "string",
                "nullable": True,
                "description": NEXT_CURSOR_HELP,
            },
        },
    }


def cursor_page_schema(name: str, results: Any, **extra: Any) -> Any:
    """The OpenAPI component of a page of a list view that answers with ``page_response``:
    ``extra`` members, ``results`` (a ``many=True`` serializer or a ``ListField``) and the
    paging members, as ``CursorPage`` documents them for the generic views."""
    return inline_serializer(
        name,
        {
            **extra,
            "results": results,
            "next": serializers.URLField(allow_null=True, help_text=NEXT_HELP),
            "next_cursor": serializers.CharField(allow_null=True, help_text=NEXT_CURSOR_HELP),
        },
    )


class CursorPage(CursorPagination):
    """The API's pagination for generic list views: a keyset on the queryset's ordering (its
    first field the position, ties broken by the next fields and DRF's offset), ``limit`` rows
    a page. A view may name ``cursor_ordering``; otherwise the queryset's explicit
    ``order_by`` is used, and an unordered queryset is a programming error."""

    page_size = LIMIT_DEFAULT
    page_size_query_param = "limit"
    max_page_size = LIMIT_MAX
    template = None
    legacy: PageNumberPagination | None = None

    def paginate_queryset(self, queryset, request, view=None):  # type: ignore[no-untyped-def]
        self.request = request
        if "page" in request.query_params:
            self.legacy = PageNumberPagination()
            self.legacy.page_size = LIMIT_DEFAULT
            return self.legacy.paginate_queryset(queryset, request, view)
        query = PageQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        # The validated number: DRF reads "5.0" as 5, int() would not.
        self.limit = int(query.validated_data.get("limit") or LIMIT_DEFAULT)
        return super().paginate_queryset(queryset, request, view)

    def get_page_size(self, request: Request) -> int:
        return getattr(self, "limit", LIMIT_DEFAULT)

    def get_ordering(self, request, queryset, view):  # type: ignore[no-untyped-def]
        ordering = (
            getattr(view, "cursor_ordering", None)
            or queryset.query.order_by
            or queryset.model._meta.ordering
        )
        if not ordering:
            raise ImproperlyConfigured(f"{type(view).__name__}: cursor pages need an ordering")
        return tuple(ordering)

    def decode_cursor(self, request: Request) -> Cursor | None:
        raw = request.query_params.get(self.cursor_query_param)
        if not raw:
            return None
        payload = cursor_read(raw, request)
        offset, position = payload.get("o", 0), payload.get("p")
        if not isinstance(offset, int) or not 0 <= offset <= self.offset_cutoff:
            raise serializers.ValidationError({"cursor": BAD_CURSOR})
        return Cursor(offset=offset, reverse=False, position=position)

    def encode_cursor(self, cursor: Cursor) -> str:
        # Only forward cursors are handed out: every list answers ``next``, none ``previous``.
        token = cursor_sign({"o": cursor.offset, "p": cursor.position}, self.request)
        return str(next_link(self.request, token))

    def get_paginated_response(self, data: Any) -> Response:
        if self.legacy is not None:
            response = self.legacy.get_paginated_response(data)
            response.data["next_cursor"] = None  # the documented shape; ``next`` goes on
            for name, value in deprecation_headers(self.request).items():
                response[name] = value
            return response
        url = self.get_next_link() if self.has_next else None
        token = parse.parse_qs(parse.urlsplit(url).query)["cursor"][0] if url else None
        return Response({"results": data, "next": url, "next_cursor": token})

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        return page_response_schema(schema.get("items", {}))

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        return [
            {
                "name": "cursor",
                "required": False,
                "in": "query",
                "description": CURSOR_HELP,
                "schema": {"type": "string", "maxLength": CURSOR_MAX_LENGTH},
            },
            {
                "name": "limit",
                "required": False,
                "in": "query",
                "description": LIMIT_HELP,
                "schema": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": LIMIT_MAX,
                    "default": LIMIT_DEFAULT,
                },
            },
            {
                "name": "page",
                "required": False,
                "in": "query",
                "deprecated": True,
                "description": PAGE_HELP,
                "schema": {"type": "integer"},
            },
        ]


def numbered_page(items: Sequence[Any] | Any, per_page: int, wanted: str) -> tuple[Page[Any], str]:
    """The page ``wanted`` (``?page=`` as sent) of ``items`` (a list or a queryset), and ``""``;
    for a page that is not a number or past the last, the first page and the reason, in the
    reader's words (the caller answers 400 with it)."""
    paginator = Paginator(items, per_page)
    try:
        return paginator.page(wanted), ""
    except (PageNotAnInteger, EmptyPage):
        shown = wanted.replace("\x00", "")[:20]  # the reader's text, not Python's repr of it
        reason = f"There is no page “{shown}”: pages run from 1 to {paginator.num_pages}."
        return paginator.page(1), reason


def query_keeping(params: Any, without: str) -> str:
    """The query string of ``params`` (a request's ``GET``) but ``without``, ready for a page
    link to add that parameter: ``"month=2026-11&q=a&"``, or ``""``."""
    kept = params.copy()
    kept.pop(without, None)
    encoded = kept.urlencode()
    return f"{encoded}&" if encoded else ""
