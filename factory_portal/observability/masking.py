"""Secrets masked out of everything the portal records about itself: log lines (every field) and
the request spans it exports. One function, ``secrets_mask``, used by both.

What it masks, wherever it appears in a text:

- API keys (their public prefix stays, so a line still tells which key was used), bearer and
  basic credentials, password-like ``name=value`` pairs;
- the URL path segments that carry a secret: the parameters named in ``SECRET_URL_PARAMETERS``
  (e.g. ``invite/<uidb64>/<token>/``) of every route of the URL confs. The routes are read from
  the URL confs themselves, so a new route with a ``<token>`` is masked without a change here;
- secret query parameters (``token=``, ``access_token=``, ``signature=``...).

It must never raise and never log (it runs inside logging and span export), and it imports no
product app: the URL confs are loaded by name once the app registry is ready, when the request
middleware is loaded (``secret_routes_prepare``), and never while another thread waits.
"""

from __future__ import annotations

import itertools
import re
import threading
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from django.urls import URLPattern, URLResolver

MASK = "[redacted]"
# URL parameters whose value is a credential: invitation and password-reset links carry the
# user's id and a one-time token.
SECRET_URL_PARAMETERS = frozenset({"token", "uidb64"})

# (pattern, replacement, substrings one of which the text must contain for it to match: most
# log fields have none, and a substring test is much cheaper than a regular expression's scan).
_PATTERNS = (
    (re.compile(r"\b(fp_[a-z0-9]{8}_)[A-Za-z0-9_-]{8,}"), rf"\1{MASK}", ("fp_",)),
    (re.compile(r"(?i)\b(bearer|basic|token)(\s+)[A-Za-z0-9._~+/=-]{8,}"), rf"\1\2{MASK}", ()),
    (
        re.compile(
            r"(?i)\b(password|passwd|secret|api_key|apikey)(['\"]?\s*[:=]\s*['\"]?)[^\s'\",&;]+"
        ),
        rf"\1\2{MASK}",
        (":", "="),
    ),
    (
        re.compile(
            r"(?i)(?:^|(?<=[?&;]))"
            r"((?:[a-z0-9_.-]*token|uidb64|secret|signature|sig|password|passwd)=)[^&;#\s'\"]+"
        ),
        rf"\1{MASK}",
        ("=",),
    ),
)
# A path parameter's value as it appears in a text: up to the next separator. "<" is excluded
# so that route templates (``invite/<uidb64>/<token>/``, a span's ``http.route``) stay readable.
_VALUE = r"[^/?#;\s<>'\"]+"
_PARAMETER = re.compile(r"<(?:(?P<converter>[^>:]+):)?(?P<parameter>[^>]+)>")
_REGEX_GROUP = re.compile(r"\(\?P<(?P<name>\w+)>")

_routes: re.Pattern[str] | None = None
_routes_lock = threading.Lock()  # held by the one thread that builds them; nobody waits for it


def secrets_mask(text: str) -> str:
    """``text`` with every secret listed in the module docstring replaced by ``[redacted]``."""
    for pattern, replacement, needles in _PATTERNS:
        if not needles or any(needle in text for needle in needles):
            text = pattern.sub(replacement, text)
    routes = _secret_routes()
    if routes is not None and "/" in text:
        text = routes.sub(_masked_match, text)
    return text


def url_origin_only(url: str) -> str:
    """An outbound URL reduced to its scheme, host and port: receivers such as chat and paging
    webhooks carry their credential in the path (``/services/T…/B…/<secret>``) or the query, and
    the portal cannot tell which part is secret. User information is dropped too."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return MASK
    if not parts.scheme or not host:
        return MASK
    if ":" in host:
        host = f"[{host}]"
    origin = f"{parts.scheme}://{host}" + (f":{port}" if port else "")
    return origin + (f"/{MASK}" if parts.path not in ("", "/") or parts.query else "/")


def _masked_match(match: re.Match[str]) -> str:
    """The matched path with the secret groups' values replaced."""
    whole, offset = match.group(0), match.start()
    spans = sorted(match.span(name) for name, value in match.groupdict().items() if value)
    pieces, last = [], 0
    for start, end in spans:
        pieces += [whole[last : start - offset], MASK]
        last = end - offset
    return "".join([*pieces, whole[last:]])


def secret_routes_prepare() -> None:
    """Compile the secret routes now, at a point where no request is served yet: the request
    middleware calls it when the handler loads it (the app registry is ready by then). Lines
    logged before that, or while another thread builds them, are masked without the routes."""
    _secret_routes()


def _secret_routes() -> re.Pattern[str] | None:
    """One regular expression matching the path of every route with a secret parameter; None
    (the other patterns still apply) before the app registry is ready (the URL confs import
    views and models) and while a thread builds it. It never waits: the builder imports the URL
    confs, and a thread that logs while importing one of their modules would wait for the
    builder while the builder waits for that import."""
    global _routes
    if _routes is not None:
        return _routes
    from django.apps import apps

    if not apps.ready or not _routes_lock.acquire(blocking=False):
        return None  # not loadable yet, or being built (by another thread, or by this one)
    try:
        if _routes is None:
            _routes = _routes_compile()
    except Exception:
        # A URL conf that cannot be imported breaks every request anyway; masking keeps the
        # other patterns rather than failing the log line or the span.
        _routes = re.compile(r"(?!)")
    finally:
        _routes_lock.release()
    return _routes


def _routes_compile() -> re.Pattern[str]:
    from django.conf import settings
    from django.urls import get_resolver

    urlconfs = {settings.ROOT_URLCONF, getattr(settings, "PUBLIC_SCHEMA_URLCONF", None)}
    routes: list[str] = []
    for urlconf in sorted(u for u in urlconfs if u):
        _collect(get_resolver(urlconf).url_patterns, [], routes, itertools.count())
    # Anchored after a "/" (a path, or the path of a full URL); the trailing slash is optional
    # (Django's APPEND_SLASH redirect logs the path without it).
    alternatives = "|".join(f"(?:{route})" for route in routes) or "(?!)"
    return re.compile(rf"(?<=/)(?:{alternatives})(?=[/?#;\s'\"]|$)")


def _collect(
    patterns: Iterable[URLPattern | URLResolver],
    prefix: list[str],
    routes: list[str],
    groups: Iterator[int],
) -> None:
    from django.urls import URLResolver

    for entry in patterns:
        parts = [*prefix, _fragment(entry.pattern, groups)]
        if isinstance(entry, URLResolver):
            _collect(entry.url_patterns, parts, routes, groups)
        else:
            route = "".join(parts).removesuffix("/")
            try:
                secret = bool(re.compile(route).groupindex)
            except re.error:  # a re_path() expression this conversion does not understand
                continue
            if secret:
                routes.append(route)


def _fragment(pattern: object, groups: Iterator[int]) -> str:
    """One URL pattern (a ``path()`` route or a ``re_path()`` expression) as a searchable
    expression without anchors, its secret parameters as groups named ``s<n>``."""
    from django.urls.resolvers import RoutePattern

    if not isinstance(pattern, RoutePattern):
        regex = str(pattern).removeprefix("^").removesuffix("$").removesuffix(r"\Z")
        return _REGEX_GROUP.sub(
            lambda m: f"(?P<s{next(groups)}>" if m["name"] in SECRET_URL_PARAMETERS else "(?:",
            regex,
        )
    route, parts, last = str(pattern), [], 0
    for match in _PARAMETER.finditer(route):
        parts.append(re.escape(route[last : match.start()]))
        last = match.end()
        if match["parameter"] in SECRET_URL_PARAMETERS:
            parts.append(f"(?P<s{next(groups)}>{_VALUE})")
        elif match["converter"] == "path":
            parts.append(r"[^?#;\s<>'\"]+?")
        else:
            parts.append(_VALUE)
    parts.append(re.escape(route[last:]))
    return "".join(parts)
