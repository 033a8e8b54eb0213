"""Reads of saved views and schedules for the saved views page (tenant schema)."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from factory_portal.accounts.models import Role, User
from factory_portal.accounts.permissions import may_open
from saved.models import SavedView, Schedule


def _visible(user: User) -> QuerySet[SavedView]:
    return SavedView.objects.filter(Q(owner=user) | Q(shared=True)).select_related("owner")


def views_for(user: User) -> list[SavedView]:
    """Views ``user`` owns and the tenant's shared ones, those whose page ``user`` may open
    (a shared run-history view is not listed to a finance user), by name."""
    return [view for view in _visible(user) if may_open(user, view.path)]


def view_for(user: User, pk: int) -> SavedView | None:
    """The saved view ``pk`` if ``user`` sees it, else None."""
    return _visible(user).filter(pk=pk).first()


def schedules_for(user: User) -> QuerySet[Schedule]:
    """The schedules ``user`` made (an admin: everyone's), with view and recipients."""
    schedules = Schedule.objects.select_related("view", "owner").prefetch_related("recipients")
    return schedules if user.role == Role.ADMIN else schedules.filter(owner=user)


def schedule_for(user: User, pk: int) -> Schedule | None:
    return schedules_for(user).filter(pk=pk).first()


def recipient_choices(user: User) -> QuerySet[User]:
    """Who ``user`` may send to: an admin, every active user; anyone else, themselves."""
    active = User.objects.filter(is_active=True).order_by("email")
    return active if user.role == Role.ADMIN else active.filter(pk=user.pk)
