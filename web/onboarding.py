"""The onboarding checklist a new tenant's admin sees on the overview: create an API key, send
a first event (or point the OpenTelemetry SDK at the portal), invite a teammate, set a budget.

Every step's tick is derived from the data (a key exists, anything was received, more than one
user, a budget exists); nothing about onboarding is stored but the admin's "dismiss", which lives
in the session. The snippets name this portal's host and the real payload and auth header, so
pasting them works. Only admins see it (they are the ones who can do every step); it disappears
when every step is done or it is dismissed."""

from __future__ import annotations

import json
from dataclasses import dataclass

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from billing.models import Budget
from factory_portal.accounts.models import ApiKey, User
from factory_portal.accounts.permissions import can, role_required
from usage.selectors.received import anything_received

DISMISSED = "onboarding_dismissed"


@dataclass(frozen=True)
class Step:
    key: str
    title: str
    done: bool
    href: str  # where to do it
    action: str  # the link's text


@dataclass(frozen=True)
class Checklist:
    steps: list[Step]
    curl: str  # POST /api/v1/events with one LLM call, for a shell
    otel_env: str  # the OTel SDK's environment variables for /v1/traces
    base_url: str  # this tenant's site, e.g. https://acme.portal.example

    @property
    def done(self) -> int:
        return sum(step.done for step in self.steps)


def events_payload(*, now_iso: str) -> dict[str, object]:
    """The first event the curl snippet sends: one LLM call of a project named ``my-first-project``
    (created on first use), priced from the price book on arrival."""
    return {
        "events": [
            {
                "type": "llm",
                "event_id": "onboarding-first-event",
                "timestamp": now_iso,
                "project": "my-first-project",
                "provider": "openai",
                "model": "gpt-4.1-mini",
                "operation": "chat",
                "input_tokens": 1200,
                "output_tokens": 300,
            }
        ]
    }


def snippets(base_url: str, *, now_iso: str) -> tuple[str, str]:
    """The curl command and the OTel environment, for ``base_url`` (no trailing slash). Both read
    the key from ``$PORTAL_API_KEY`` so that it is never pasted into a page or a history file."""
    body = json.dumps(events_payload(now_iso=now_iso))
    curl = (
        f"curl -sS -X POST {base_url}/api/v1/events \\\n"
        '  -H "Authorization: Bearer $PORTAL_API_KEY" \\\n'
        '  -H "Content-Type: application/json" \\\n'
        f"  -d '{body}'"
    )
    otel_env = (
        f"export OTEL_EXPORTER_OTLP_ENDPOINT={base_url}   # the SDK appends /v1/traces\n"
        'export OTEL_EXPORTER_OTLP_HEADERS="Authorization=Bearer%20$PORTAL_API_KEY"\n'
        "export OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf   # or http/json\n"
        "export OTEL_SERVICE_NAME=my-factory"
    )
    return curl, otel_env


def onboarding_checklist(request: HttpRequest) -> Checklist | None:
    """The checklist for the signed-in user on this tenant's site, or None: not an admin, every
    step done, or dismissed. Four EXISTS/COUNT queries at most, only for admins."""
    if not can(request.user, "admin") or request.session.get(DISMISSED):
        return None
    steps = [
        Step(
            "api_key",
            "Create an API key with the ingest scope",
            ApiKey.objects.filter(revoked_at__isnull=True, scopes__contains=["ingest"]).exists(),
            reverse("api-keys"),
            "Settings → API keys",
        ),
        Step(
            "first_event",
            "Send a first event, or point the OpenTelemetry SDK at the portal",
            anything_received(),
            "#onboarding-snippets",
            "The commands below",
        ),
        Step(
            "teammate",
            "Invite a teammate",
            User.objects.filter(is_active=True).count() > 1,
            reverse("users"),
            "Settings → Users",
        ),
        Step(
            "budget",
            "Set a budget",
            Budget.objects.exists(),
            reverse("budgets"),
            "Budgets",
        ),
    ]
    if all(step.done for step in steps):
        return None
    base_url = request.build_absolute_uri("/").rstrip("/")
    now_iso = timezone.now().replace(microsecond=0).isoformat().replace("+00:00", "Z")
    curl, otel_env = snippets(base_url, now_iso=now_iso)
    return Checklist(steps=steps, curl=curl, otel_env=otel_env, base_url=base_url)


@role_required("admin")
@require_POST
def onboarding_dismiss(request: HttpRequest) -> HttpResponse:
    """Hide the checklist for this admin's session."""
    request.session[DISMISSED] = True
    return redirect("home")
