"""The saved views page (every signed-in user: their views, the tenant's shared ones and their
schedules) and its forms; the "Save view" form of the analytics pages posts to ``create``."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_POST

from factory_portal.accounts.models import User
from factory_portal.accounts.permissions import can, role_required, signed_in_user
from saved import selectors, services
from saved.domain import CADENCES, QUERY_MAX, SavedViewError
from saved.models import SavedView


def _to_page() -> HttpResponseRedirect:
    return HttpResponseRedirect(reverse("saved-views"))


def _pk(value: str) -> int | None:
    return int(value) if value.isascii() and value.isdigit() and len(value) < 12 else None


def _back(path: str, query: str) -> str:
    """Where a refused save returns: the analytics page it came from, else the saved views
    page (never a posted URL of another kind)."""
    try:
        services.page_name(path)
    except SavedViewError:
        return reverse("saved-views")
    return f"{path}?{query}" if query and len(query) <= QUERY_MAX else path


@role_required("signed_in")
def saved_views(request: HttpRequest) -> HttpResponse:
    user = signed_in_user(request.user)
    views = selectors.views_for(user)
    return render(
        request,
        "saved/saved_views.html",
        {
            "views": [(view, services.page_title(view)) for view in views],
            "schedules": selectors.schedules_for(user),
            "recipients": selectors.recipient_choices(user),
            "cadences": CADENCES,
            "may_schedule_report": can(user, "costs"),
        },
    )


@role_required("signed_in")
@require_POST
def create(request: HttpRequest) -> HttpResponse:
    """Save the page the form was posted from; back to that page, saying what happened."""
    user = signed_in_user(request.user)
    path, query = request.POST.get("path", ""), request.POST.get("query", "")
    try:
        view = services.saved_view_create(
            owner=user,
            name=request.POST.get("name", ""),
            path=path,
            query=query,
            shared=request.POST.get("shared") == "on",
        )
    except SavedViewError as exc:
        messages.error(request, f"Not saved: {exc}")
        return HttpResponseRedirect(_back(path, query))
    messages.success(request, f"Saved as “{view.name}”; it is listed under Saved views.")
    return HttpResponseRedirect(view.href)


def _view(request: HttpRequest, pk: int) -> tuple[User, SavedView]:
    user = signed_in_user(request.user)
    view = selectors.view_for(user, pk)
    if view is None:
        raise Http404("No such saved view.")
    return user, view


@role_required("signed_in")
@require_POST
def rename(request: HttpRequest, pk: int) -> HttpResponse:
    user, view = _view(request, pk)
    try:
        services.saved_view_rename(view=view, user=user, name=request.POST.get("name", ""))
    except SavedViewError as exc:
        messages.error(request, f"Not renamed: {exc}")
    return _to_page()


@role_required("signed_in")
@require_POST
def share(request: HttpRequest, pk: int) -> HttpResponse:
    user, view = _view(request, pk)
    try:
        services.saved_view_share(view=view, user=user, shared=request.POST.get("shared") == "on")
    except SavedViewError as exc:
        messages.error(request, str(exc))
    return _to_page()


@role_required("signed_in")
@require_POST
def delete(request: HttpRequest, pk: int) -> HttpResponse:
    user, view = _view(request, pk)
    try:
        services.saved_view_delete(view=view, user=user)
    except SavedViewError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Deleted “{view.name}”.")
    return _to_page()


@role_required("signed_in")
@require_POST
def schedule_create(request: HttpRequest) -> HttpResponse:
    """A schedule of a saved view (``view``) or, with ``view=report``, of the monthly report."""
    user = signed_in_user(request.user)
    raw_view = request.POST.get("view", "")
    view = None
    if raw_view != "report":
        pk = _pk(raw_view)
        view = selectors.view_for(user, pk) if pk is not None else None
        if view is None:
            messages.error(request, "Not scheduled: choose a saved view or the monthly report.")
            return _to_page()
    wanted = [pk for pk in map(_pk, request.POST.getlist("recipients")) if pk is not None]
    recipients = list(selectors.recipient_choices(user).filter(pk__in=wanted))
    if len(recipients) != len(set(wanted)):
        messages.error(request, "Not scheduled: a chosen recipient is not one you can choose.")
        return _to_page()
    try:
        services.schedule_create(
            owner=user, view=view, cadence=request.POST.get("cadence", ""), recipients=recipients
        )
    except SavedViewError as exc:
        messages.error(request, f"Not scheduled: {exc}")
    else:
        messages.success(request, "Scheduled.")
    return _to_page()


@role_required("signed_in")
@require_POST
def schedule_delete(request: HttpRequest, pk: int) -> HttpResponse:
    user = signed_in_user(request.user)
    schedule = selectors.schedule_for(user, pk)
    if schedule is None:
        raise Http404("No such schedule.")
    try:
        services.schedule_delete(schedule=schedule, user=user)
    except SavedViewError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Schedule deleted.")
    return _to_page()
