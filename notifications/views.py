"""The in-app inbox page (every signed-in user of the tenant) and marking notifications read."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from factory_portal.accounts.permissions import may_open, role_required
from notifications import selectors, services


def _back(request: HttpRequest) -> HttpResponseRedirect:
    """Back to the inbox page the form was posted from (only ever a URL on this host)."""
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = reverse("notifications")
    return HttpResponseRedirect(target)


@role_required("signed_in")
def inbox(request: HttpRequest) -> HttpResponse:
    unread_only = request.GET.get("show") == "unread"
    page = selectors.inbox(request.user, request.GET.get("page"), unread_only=unread_only)
    # A notification's action button only for users its view would let in (an alert's
    # "Acknowledge" is for members and admins: finance users read the alert, without a button).
    actionable = {
        n.pk for n in page.object_list if n.action_url and may_open(request.user, n.action_url)
    }
    # A title links to what it is about only for users that page would let in (a finance user's
    # run alert names the run without a link that would answer 403).
    linkable = {n.pk for n in page.object_list if n.url and may_open(request.user, n.url)}
    return render(
        request,
        "notifications/inbox.html",
        {
            "page": page,
            "unread_only": unread_only,
            "actionable": actionable,
            "linkable": linkable,
        },
    )


@role_required("signed_in")
@require_POST
def mark_read(request: HttpRequest, pk: int) -> HttpResponse:
    notification = selectors.notification_for(request.user, pk)
    if notification is None:
        raise Http404("No such notification.")
    services.notification_mark_read(notification=notification, user=request.user)
    return _back(request)


@role_required("signed_in")
@require_POST
def mark_all_read(request: HttpRequest) -> HttpResponse:
    services.notifications_mark_all_read(user=request.user)
    return _back(request)
