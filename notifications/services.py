"""Writes of the in-app inbox: posting notifications and marking them read (tenant schema).

Posting is idempotent per ``dedup_key`` so an alert evaluated twice posts once; delivery by
e-mail or webhook is not done here.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from factory_portal.accounts.models import User
from notifications import selectors
from notifications.models import Notification, NotificationRead


def _url_validate(url: str) -> str:
    """A path on this host (``/budgets/``) or an absolute http(s) URL; nothing else is linked."""
    url = url.strip()
    if not url:
        return ""
    parts = urlsplit(url)
    is_path = url.startswith("/") and not url.startswith("//") and not parts.scheme
    if not is_path and (parts.scheme not in {"http", "https"} or not parts.netloc):
        raise ValidationError(f"A notification link is a path or an http(s) URL; got {url!r}.")
    return url


def _action_validate(url: str) -> str:
    """An action posts to a path on this host only (never to another site)."""
    url = url.strip()
    if url and (not url.startswith("/") or url.startswith("//") or urlsplit(url).scheme):
        raise ValidationError(f"A notification action is a path on this site; got {url!r}.")
    return url


def notification_create(
    *,
    kind: str,
    title: str,
    severity: str = Notification.Severity.INFO,
    body: str = "",
    url: str = "",
    user: User | None = None,
    dedup_key: str = "",
    action_url: str = "",
    action_label: str = "",
) -> Notification:
    """Post a notification to ``user`` or, when None, to everyone in the tenant. With a
    ``dedup_key`` already posted, returns the existing notification and posts nothing."""
    if kind not in Notification.Kind.values:
        raise ValidationError(f"Unknown notification kind {kind!r}.")
    if severity not in Notification.Severity.values:
        raise ValidationError(f"Unknown severity {severity!r}.")
    title = title.strip()
    if not title:
        raise ValidationError("A notification needs a title.")
    fields = {
        "kind": kind,
        "severity": severity,
        "title": title[:200],
        "body": body.strip(),
        "url": _url_validate(url),
        "user": user,
        "action_url": _action_validate(action_url),
        "action_label": action_label.strip()[:40],
    }
    if dedup_key:
        existing = Notification.objects.filter(dedup_key=dedup_key).first()
        if existing is not None:
            return existing
        try:
            with transaction.atomic():
                return Notification.objects.create(dedup_key=dedup_key, **fields)
        except IntegrityError:  # posted concurrently under the same key
            return Notification.objects.get(dedup_key=dedup_key)
    return Notification.objects.create(**fields)


def notification_mark_read(*, notification: Notification, user: User) -> None:
    NotificationRead.objects.bulk_create(
        [NotificationRead(notification=notification, user=user, read_at=timezone.now())],
        ignore_conflicts=True,
    )


def notifications_mark_all_read(*, user: User) -> int:
    """Mark everything ``user`` sees as read; returns how many were unread."""
    now = timezone.now()
    ids = selectors.unread_ids(user)
    NotificationRead.objects.bulk_create(
        [NotificationRead(notification_id=pk, user=user, read_at=now) for pk in ids],
        ignore_conflicts=True,
        batch_size=1000,
    )
    return len(ids)
