"""Log in and out, on the operator console and on each tenant's host alike.

Users live per schema, so the same form authenticates operators on the base domain and a
tenant's users on that tenant's host; a user of one tenant does not exist on another's host.
"""

from __future__ import annotations

from django.contrib.auth import views as auth_views


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    redirect_authenticated_user = True


class LogoutView(auth_views.LogoutView):
    pass
