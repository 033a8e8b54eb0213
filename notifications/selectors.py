"""Reads of the in-app inbox, in the schema of the current connection (the tenant's).

A user sees the notifications addressed to them and those addressed to everyone that were posted
since they joined (a new colleague does not start with a backlog of old alerts).
"""

from __future__ import annotations

from django.core.paginator import Page, Paginator
from django.db.models import Exists, OuterRef, Q, QuerySet, Subquery

from factory_portal.accounts.models import User
from notifications.models import Notification, NotificationRead

PAGE_SIZE = 25


def _visible(user: User) -> QuerySet[Notification]:
    return Notification.objects.filter(
        Q(user=user) | Q(user__isnull=True, created_at__gte=user.date_joined)
    )


def _read_by(user: User) -> QuerySet[NotificationRead]:
    return NotificationRead.objects.filter(notification=OuterRef("pk"), user=user)


def _unread(user: User) -> QuerySet[Notification]:
    return _visible(user).filter(~Exists(_read_by(user)))


def unread_count(user: User) -> int:
    """How many notifications ``user`` has not read: one query."""
    return _unread(user).count()


def inbox(user: User, page: int | str | None = 1, *, unread_only: bool = False) -> Page:
    """One page (25, newest first) of what ``user`` sees; each notification carries ``read_at``
    (None when unread). An out-of-range or malformed page number gives the nearest page."""
    notifications = (_unread(user) if unread_only else _visible(user)).annotate(
        read_at=Subquery(_read_by(user).values("read_at")[:1])
    )
    return Paginator(notifications.order_by("-created_at", "-id"), PAGE_SIZE).get_page(page)


def notification_for(user: User, pk: int) -> Notification | None:
    """The notification ``pk`` if ``user`` may see it, else None."""
    return _visible(user).filter(pk=pk).first()


def unread_ids(user: User) -> list[int]:
    return list(_unread(user).values_list("pk", flat=True))


def visible_with_read_state(user: User) -> QuerySet[Notification]:
    """Everything ``user`` sees, newest first, each with ``read_at`` (for the API)."""
    return (
        _visible(user)
        .annotate(read_at=Subquery(_read_by(user).values("read_at")[:1]))
        .order_by("-created_at", "-id")
    )
