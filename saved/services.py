"""The writes of saved views and schedules, and the scheduled e-mails: which are due (one
``ScheduledSend`` per occurrence and recipient) and what each says. Sending, retries and "at most
once" are the alerts outbox's (``alerts.services.outbox``); this module builds the message only.

A saved view is of one of the tenant's analytics pages (``domain.PAGES``, resolved on this host:
never another site or the API) that its owner may open. Everyone may delete their own views and
schedules; an admin may delete anyone's. An e-mail goes only to active users who may open what it
links to (a finance user never gets a run-history link), and of a private view only to its owner.
"""

from __future__ import annotations

from datetime import date, datetime
from urllib.parse import urlsplit

from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.http import QueryDict
from django.template.loader import render_to_string
from django.urls import Resolver404, resolve, reverse
from django.utils import timezone

from alerts.services.outbox import Attempt, Outcome, current_tenant, email_attempt, outbox_send
from factory_portal import periods, ranges
from factory_portal.accounts.models import Role, User
from factory_portal.accounts.permissions import may_open
from factory_portal.tenants.selectors import tenant_url
from saved.domain import (
    CADENCES,
    PAGES,
    SCHEDULES_PER_USER,
    VIEWS_PER_USER,
    SavedViewError,
    due_occurrence,
    name_clean,
    query_clean,
)
from saved.models import SavedView, Schedule, ScheduledSend


def page_name(path: str) -> str:
    """The URL name of the analytics page at ``path`` on this host, or SavedViewError."""
    parts = urlsplit(path)
    if parts.scheme or parts.netloc or not path.startswith("/") or path.startswith("//"):
        raise SavedViewError("Only pages of this site can be saved.")
    try:
        match = resolve(parts.path)
    except Resolver404:
        raise SavedViewError("There is no page at that address.") from None
    if match.url_name not in PAGES:
        raise SavedViewError(
            "Only the analytics pages can be saved: " + ", ".join(PAGES.values()) + "."
        )
    return match.url_name


def page_title(view: SavedView) -> str:
    try:
        return PAGES[page_name(view.path)]
    except SavedViewError:
        return view.path


def _is_admin(user: User) -> bool:
    return user.role == Role.ADMIN


def saved_view_create(
    *, owner: User, name: str, path: str, query: str = "", shared: bool = False
) -> SavedView:
    """Save ``path`` with ``query`` under ``name`` for ``owner`` (a path given with its query,
    ``/usage/?range=7d``, is split)."""
    path, _, inline_query = path.strip().partition("?")
    page_name(path)
    if not may_open(owner, path):
        raise SavedViewError("You cannot open that page, so you cannot save it.")
    name = name_clean(name)
    query = query_clean(query or inline_query)
    if SavedView.objects.filter(owner=owner).count() >= VIEWS_PER_USER:
        raise SavedViewError(f"You have {VIEWS_PER_USER} saved views, the most there can be.")
    try:
        with transaction.atomic():
            return SavedView.objects.create(
                owner=owner, name=name, path=path, query=query, shared=shared
            )
    except IntegrityError:
        raise SavedViewError(f"You already have a saved view named “{name}”.") from None


def _owned(view: SavedView, user: User) -> None:
    if view.owner_id != user.pk:
        raise SavedViewError("Only its owner can change a saved view.")


def saved_view_rename(*, view: SavedView, user: User, name: str) -> SavedView:
    _owned(view, user)
    view.name = name_clean(name)
    try:
        with transaction.atomic():
            view.save(update_fields=["name"])
    except IntegrityError:
        raise SavedViewError(f"You already have a saved view named “{view.name}”.") from None
    return view


def saved_view_share(*, view: SavedView, user: User, shared: bool) -> SavedView:
    _owned(view, user)
    view.shared = shared
    view.save(update_fields=["shared"])
    return view


def saved_view_delete(*, view: SavedView, user: User) -> None:
    """Its owner or an admin deletes a view (and its schedules)."""
    if view.owner_id != user.pk and not _is_admin(user):
        raise SavedViewError("Only its owner or an admin can delete a saved view.")
    view.delete()


def _target(view: SavedView | None) -> str:
    """The path a schedule's e-mail links to: the view's page, or the reports page."""
    return view.path if view is not None else reverse("reports")


def schedule_create(
    *, owner: User, view: SavedView | None, cadence: str, recipients: list[User]
) -> Schedule:
    """E-mail ``view`` (None: the monthly report) every ``cadence`` to ``recipients``: active
    users who may open it. Anyone schedules for themselves; an admin also for others."""
    if cadence not in CADENCES:
        raise SavedViewError(f"Choose how often: {', '.join(CADENCES)}.")
    if view is not None and view.owner_id != owner.pk and not view.shared:
        raise SavedViewError("That saved view is private.")
    target = _target(view)
    if not may_open(owner, target):
        raise SavedViewError("You cannot open that page, so you cannot schedule it.")
    if not recipients:
        raise SavedViewError("Choose at least one recipient.")
    for user in recipients:
        if user.pk != owner.pk and not _is_admin(owner):
            raise SavedViewError("You can schedule e-mails to yourself; an admin also to others.")
        if not user.is_active:
            raise SavedViewError(f"{user.email} is deactivated.")
        if not may_open(user, target):
            raise SavedViewError(f"{user.email} cannot open that page ({user.get_role_display()}).")
        if view is not None and not view.shared and user.pk != view.owner_id:
            raise SavedViewError("Share the view before sending it to others.")
    if Schedule.objects.filter(owner=owner).count() >= SCHEDULES_PER_USER:
        raise SavedViewError(f"You have {SCHEDULES_PER_USER} schedules, the most there can be.")
    with transaction.atomic():
        schedule = Schedule.objects.create(owner=owner, view=view, cadence=cadence)
        schedule.recipients.set(recipients)
    return schedule


def schedule_delete(*, schedule: Schedule, user: User) -> None:
    if schedule.owner_id != user.pk and not _is_admin(user):
        raise SavedViewError("Only its owner or an admin can delete a schedule.")
    schedule.delete()


def _may_receive(schedule: Schedule, user: User) -> bool:
    """Whether ``user`` gets this occurrence: checked at every send, for the owner as at
    scheduling (an owner no longer admin e-mails only themselves; an owner who can no longer
    open the page e-mails nobody) and for the recipient (active, may open it)."""
    view = schedule.view
    owner = schedule.owner
    target = _target(view)
    if view is not None and not view.shared and user.pk != view.owner_id:
        return False
    if user.pk != owner.pk and not _is_admin(owner):
        return False
    return may_open(owner, target) and user.is_active and may_open(user, target)


def sends_due_create(*, now: datetime) -> None:
    """Make the rows of every occurrence that is due and not made yet (one per recipient who
    may still receive it: active, able to open it); rows made before are left as they are."""
    zone = periods.zone(current_tenant().timezone)
    today = periods.local_date(now, zone)
    rows = []
    schedules = Schedule.objects.filter(owner__is_active=True).select_related("view", "owner")
    for schedule in schedules.prefetch_related("recipients"):
        occurrence = due_occurrence(
            schedule.cadence, today, periods.local_date(schedule.created_at, zone)
        )
        if occurrence is None:
            continue
        rows += [
            ScheduledSend(schedule=schedule, recipient=user, occurrence=occurrence.day)
            for user in schedule.recipients.all()
            if _may_receive(schedule, user)
        ]
    ScheduledSend.objects.bulk_create(rows, ignore_conflicts=True)


def scheduled_send(send_id: int) -> Outcome:
    return outbox_send(
        ScheduledSend.objects.select_related("schedule__view", "recipient"),
        send_id,
        attempt=_email,
        channel=lambda send: "email",
    )


def _range_label(view: SavedView, today: date) -> str:
    params = QueryDict(view.query)
    if not any(params.get(key) for key in ranges.RANGE_PARAMS):
        return "the page's default range"
    chosen, _ = ranges.range_parse(params, today=today)
    return chosen.label


def _email(send: ScheduledSend) -> Attempt:
    recipient = send.recipient
    schedule = send.schedule
    if not _may_receive(schedule, recipient):
        return Attempt("the recipient may no longer receive it")
    tenant = current_tenant()
    zone = periods.zone(tenant.timezone)
    context: dict[str, object] = {"tenant": tenant, "cadence": CADENCES[schedule.cadence]}
    view = schedule.view
    if view is not None:
        today = periods.local_date(timezone.now(), zone)
        summary = f"{page_title(view)} · {_range_label(view, today)}"
        subject = f"[{tenant.name}] {view.name}"
        context |= {"name": view.name, "summary": summary, "link": tenant_url(tenant, view.href)}
    else:
        month = periods.previous_month(send.occurrence)
        period = periods.month_text(month)
        subject = f"[{tenant.name}] Monthly report, {month:%B %Y}"
        context |= {
            "name": f"Monthly report, {month:%B %Y}",
            "summary": f"The finance report of {month:%B %Y}, the last closed month.",
            "link": tenant_url(tenant, reverse("reports")),
            "files": [
                (label, tenant_url(tenant, reverse("report-download", args=[period, fmt])))
                for fmt, label in (("csv", "CSV"), ("xlsx", "Excel (XLSX)"))
            ],
        }
    message = EmailMultiAlternatives(
        subject=" ".join(subject.split()),  # a name never breaks the subject line
        body=render_to_string("saved/email/scheduled.txt", context),
        to=[recipient.email],
    )
    message.attach_alternative(render_to_string("saved/email/scheduled.html", context), "text/html")
    return email_attempt(message)
