"""Log in and out, on the operator console and on each tenant's host alike; the tenant admin's
settings pages (API keys, users) and accepting an invitation.

Users live per schema, so the same form authenticates operators on the base domain and a
tenant's users on that tenant's host; a user of one tenant does not exist on another's host.
Secrets (a new raw API key, an invitation link) are rendered once in the response to the POST
that made them, never put in a redirect, the session or a cache.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm, SetPasswordForm
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse_lazy
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_POST

from factory_portal.accounts import selectors, services
from factory_portal.accounts.forms import (
    ROLE_CHOICES,
    ApiKeyCreateForm,
    UserInviteForm,
    UserRoleForm,
)
from factory_portal.accounts.models import ApiKey, User
from factory_portal.accounts.permissions import role_required, signed_in_user
from factory_portal.accounts.tokens import invite_token_generator


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    redirect_authenticated_user = True


class LogoutView(auth_views.LogoutView):
    pass


def login_locked_out(
    request: HttpRequest,
    original_response: HttpResponse | None = None,
    credentials: dict[str, Any] | None = None,
) -> HttpResponse:
    """The login page answering a refused attempt (django-axes' lock-out response): 429 with
    the wait. Every failure restarts the lock-out, so the wait is always the whole of it."""
    minutes = settings.LOGIN_LOCKOUT_MINUTES
    form = AuthenticationForm(request, initial={"username": request.POST.get("username", "")})
    response = render(
        request,
        LoginView.template_name,
        {"form": form, "next": request.POST.get("next", ""), "locked_out_minutes": minutes},
        status=429,
    )
    response["Retry-After"] = str(minutes * 60)
    return response


# --- Settings: API keys (tenant admin) -----------------------------------------------------------


def _shown_once(response: HttpResponse) -> HttpResponse:
    """A page carrying a secret (raw key, invitation link) must not be cached anywhere."""
    add_never_cache_headers(response)
    return response


@role_required("admin")
def api_keys(request: HttpRequest) -> HttpResponse:
    form = ApiKeyCreateForm(request.POST if request.method == "POST" else None)
    created = raw_key = None
    if request.method == "POST" and form.is_valid():
        try:
            created, raw_key = services.api_key_create(
                name=form.cleaned_data["name"],
                scopes=form.cleaned_data["scopes"],
                created_by=signed_in_user(request.user),
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            form = ApiKeyCreateForm()
    status = 400 if request.method == "POST" and form.errors else 200
    response = render(
        request,
        "accounts/api_keys.html",
        {
            "keys": selectors.api_keys_list(),
            "form": form,
            "created": created,
            "raw_key": raw_key,
        },
        status=status,
    )
    return _shown_once(response) if raw_key else response


@role_required("admin")
def api_key_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    api_key = get_object_or_404(ApiKey, pk=pk)
    if request.method == "POST":
        if api_key.is_active:
            services.api_key_revoke(api_key=api_key)
            messages.success(
                request,
                f"Key “{api_key.name}” (fp_{api_key.prefix}_…) is revoked: requests using it now"
                " get 401.",
            )
        else:
            messages.info(request, f"Key “{api_key.name}” was already revoked.")
        return redirect("api-keys")
    return render(request, "accounts/api_key_revoke.html", {"api_key": api_key})


# --- Settings: users (tenant admin) --------------------------------------------------------------


def _origin(request: HttpRequest) -> str:
    return f"{request.scheme}://{request.get_host()}"


def _users_page(
    request: HttpRequest,
    *,
    form: UserInviteForm | None = None,
    invitation: services.Invitation | None = None,
    status: int = 200,
) -> HttpResponse:
    response = render(
        request,
        "accounts/users.html",
        {
            "users": selectors.users_list(),
            "form": form or UserInviteForm(),
            "roles": ROLE_CHOICES,
            "invitation": invitation,
        },
        status=status,
    )
    return _shown_once(response) if invitation else response


@role_required("admin")
def users(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return _users_page(request)
    form = UserInviteForm(request.POST)
    if not form.is_valid():
        return _users_page(request, form=form, status=400)
    try:
        invitation = services.user_invite(
            email=form.cleaned_data["email"],
            role=form.cleaned_data["role"],
            full_name=form.cleaned_data["full_name"],
            origin=_origin(request),
            invited_by=signed_in_user(request.user),
        )
    except ValidationError as exc:
        form.add_error("email", exc)
        return _users_page(request, form=form, status=400)
    return _users_page(request, invitation=invitation)


@role_required("admin")
@require_POST
def user_role(request: HttpRequest, pk: int) -> HttpResponse:
    user = get_object_or_404(User, pk=pk)
    form = UserRoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(str(error) for error in form.errors["role"]))
        return _users_page(request, status=400)
    try:
        user = services.user_role_set(
            user=user, role=form.cleaned_data["role"], by=signed_in_user(request.user)
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return _users_page(request, status=400)
    messages.success(request, f"{user.email} is now {user.get_role_display().lower()}.")
    return redirect("users")


@role_required("admin")
@require_POST
def user_deactivate(request: HttpRequest, pk: int) -> HttpResponse:
    user = get_object_or_404(User, pk=pk)
    try:
        services.user_deactivate(user=user, by=signed_in_user(request.user))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return _users_page(request, status=400)
    messages.success(request, f"{user.email} is deactivated and can no longer log in.")
    return redirect("users")


@role_required("admin")
@require_POST
def user_reactivate(request: HttpRequest, pk: int) -> HttpResponse:
    user = services.user_reactivate(user=get_object_or_404(User, pk=pk))
    messages.success(request, f"{user.email} is active again.")
    return redirect("users")


@role_required("admin")
@require_POST
def user_reinvite(request: HttpRequest, pk: int) -> HttpResponse:
    user = get_object_or_404(User, pk=pk)
    try:
        invitation = services.invitation_send(
            user=user, origin=_origin(request), invited_by=signed_in_user(request.user)
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return _users_page(request, status=400)
    return _users_page(request, invitation=invitation)


# --- Accepting an invitation (anyone holding the link) -------------------------------------------


class InvitationAcceptView(auth_views.PasswordResetConfirmView):
    """Django's password-reset confirmation with the invitation token generator. The token moves
    from the URL to the session on the first visit (so it does not leak through ``Referer``)."""

    template_name = "accounts/invite_accept.html"
    token_generator = invite_token_generator
    success_url = reverse_lazy("login")
    post_reset_login = False

    def get_user(self, uidb64: str) -> User | None:
        user = super().get_user(uidb64)
        return user if user is not None and user.is_active else None

    def form_valid(self, form: SetPasswordForm[User]) -> HttpResponse:
        services.invitation_accept(user=form.user, password=form.cleaned_data["new_password1"])
        self.request.session.pop(auth_views.INTERNAL_RESET_SESSION_TOKEN, None)
        messages.success(self.request, "Your password is set. Log in with your e-mail address.")
        return redirect(self.get_success_url())

    def form_invalid(self, form: SetPasswordForm[User]) -> HttpResponse:
        return self.render_to_response(self.get_context_data(form=form), status=400)

    def render_to_response(self, context: dict[str, Any], **kwargs: Any) -> HttpResponse:
        if not context.get("validlink"):
            kwargs["status"] = 400
        return super().render_to_response(context, **kwargs)
