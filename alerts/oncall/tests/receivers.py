"""Local stand-ins for PagerDuty, Slack and Microsoft Teams, and incidents made directly.

Each receiver is an HTTP server in a thread that records every request and answers as the
vendor's documentation says, checking the body against that documentation (written from the
docs, not from our payload code): PagerDuty's Events API v2 answers 202 with "Event processed" or
400 "invalid event"; a Slack incoming webhook 200 "ok" or 400 "invalid_payload"; a Teams
Workflows webhook 202, or 400 for a body that is not the Adaptive Card message envelope.
Scripted status codes (``statuses``) are answered first, one per request.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from django.test import override_settings
from django.utils import timezone

from alerts.oncall.domain.rules import fingerprint
from alerts.oncall.models import Incident

PAGERDUTY_KEY = "a" * 28 + "B9c0"  # 32 letters and digits, as PagerDuty issues them
PD_ACTIONS = {"trigger", "acknowledge", "resolve"}
PD_SEVERITIES = {"critical", "error", "warning", "info"}


def pagerduty_errors(body: Any) -> list[str]:
    """What PagerDuty's Events API v2 would refuse (its OpenAPI description and docs)."""
    if not isinstance(body, dict):
        return ["Event object format is unrecognized"]
    errors = []
    if len(str(body.get("routing_key", ""))) != 32:
        errors.append("Length of 'routing_key' is incorrect (should be 32 characters)")
    action = body.get("event_action")
    if action not in PD_ACTIONS:
        errors.append("'event_action' is invalid")
    if action != "trigger" and not body.get("dedup_key"):
        errors.append("'dedup_key' is required for acknowledge and resolve")
    if len(str(body.get("dedup_key", ""))) > 255:
        errors.append("'dedup_key' is longer than 255 characters")
    if action == "trigger":
        payload = body.get("payload")
        if not isinstance(payload, dict):
            return [*errors, "'payload' is missing"]
        missing = [f for f in ("summary", "source", "severity") if not payload.get(f)]
        errors += [f"'payload.{field}' is missing" for field in missing]
        if len(str(payload.get("summary", ""))) > 1024:
            errors.append("'payload.summary' is longer than 1024 characters")
        if payload.get("severity") not in PD_SEVERITIES:
            errors.append("'payload.severity' is invalid")
        if "timestamp" in payload:
            try:
                datetime.fromisoformat(str(payload["timestamp"]).replace("Z", "+00:00"))
            except ValueError:
                errors.append("'payload.timestamp' is not ISO 8601")
        if "custom_details" in payload and not isinstance(payload["custom_details"], dict):
            errors.append("'payload.custom_details' is not an object")
        if any(not isinstance(k, dict) or not k.get("href") for k in body.get("links", [])):
            errors.append("a link has no href")
    return errors


def slack_errors(body: Any) -> list[str]:
    """An incoming webhook needs ``text`` or ``blocks``; Block Kit's limits apply."""
    if not isinstance(body, dict) or not (body.get("text") or body.get("blocks")):
        return ["invalid_payload"]
    for block in body.get("blocks", []):
        kind = block.get("type")
        if kind not in {"header", "section", "context", "divider", "actions"}:
            return ["invalid_blocks"]
        text = block.get("text", {})
        if kind == "header" and (text.get("type") != "plain_text" or len(text["text"]) > 150):
            return ["invalid_blocks"]
        if kind == "section" and len(block.get("fields", [])) > 10:
            return ["invalid_blocks"]
    return []


def teams_errors(body: Any) -> list[str]:
    """The message envelope of "Send Adaptive Cards using an incoming webhook"."""
    if not isinstance(body, dict) or body.get("type") != "message":
        return ["type must be message"]
    attachments = body.get("attachments")
    if not isinstance(attachments, list) or not attachments:
        return ["attachments missing"]
    for attachment in attachments:
        if attachment.get("contentType") != "application/vnd.microsoft.card.adaptive":
            return ["contentType must be the adaptive card type"]
        card = attachment.get("content") or {}
        if card.get("type") != "AdaptiveCard" or not card.get("version"):
            return ["content must be an AdaptiveCard with a version"]
    return []


VENDORS = {
    "pagerduty": (pagerduty_errors, 202),
    "slack": (slack_errors, 200),
    "teams": (teams_errors, 202),
}
PATHS = {  # shaped like the real URLs
    "pagerduty": "/v2/enqueue",
    "slack": "/services/T0000/B0000/slacksecret7Zq4",
    "teams": "/workflows/f00/triggers/manual/paths/invoke?sig=teamssecret8Yw2",
}


class VendorReceiver:
    """An HTTP server in a thread standing in for one vendor (see the module docstring)."""

    def __init__(self, vendor: str, statuses: list[int] | None = None, delay_s: float = 0) -> None:
        self.vendor = vendor
        self.statuses = list(statuses or [])
        self.delay_s = delay_s
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.answers: list[int] = []
        check, ok = VENDORS[vendor]
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                outer.requests.append(body)
                outer.headers.append(dict(self.headers))
                if outer.delay_s:
                    time.sleep(outer.delay_s)
                status, answer = outer._answer(body, check, ok)
                outer.answers.append(status)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}{PATHS[vendor]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _answer(self, body: Any, check: Any, ok: int) -> tuple[int, bytes]:
        if self.statuses:
            status = self.statuses.pop(0)
            return status, b'{"status":"throttled"}' if status == 429 else b"rollup_error"
        errors = check(body)
        if self.vendor == "pagerduty":
            if errors:
                document = {"status": "invalid event", "message": "Event object is invalid"}
                return 400, json.dumps({**document, "errors": errors}).encode()
            answer = {"status": "success", "message": "Event processed"}
            return 202, json.dumps({**answer, "dedup_key": body.get("dedup_key")}).encode()
        if errors:
            return 400, errors[0].encode()
        return ok, b"ok" if self.vendor == "slack" else b""

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def receiver(vendor: str, statuses: list[int] | None = None, **kw: Any) -> Iterator[VendorReceiver]:
    """A receiver, with loopback addresses allowed (and PagerDuty's URL pointed at a PagerDuty
    receiver)."""
    server = VendorReceiver(vendor, statuses, **kw)
    try:
        pagerduty = {"PAGERDUTY_EVENTS_URL": server.url} if vendor == "pagerduty" else {}
        with override_settings(ALERTS_WEBHOOK_ALLOW_PRIVATE=True, **pagerduty):
            yield server
    finally:
        server.close()


def incident_make(
    *,
    rule: str = "factory_queue_depth_high",
    labels: dict[str, str] | None = None,
    severity: str = "warning",
    value: float = 1240.0,
    threshold: float = 1000.0,
    summary: str = "Queue q1: 1,240 jobs waiting (over 1,000)",
    started_at: datetime | None = None,
    fired_after_s: int = 600,
) -> Incident:
    """A firing incident in the current schema, made directly (no rule evaluation)."""
    labels = {"queue_name": "q1"} if labels is None else labels
    started = started_at or timezone.now() - timedelta(minutes=30)
    fired = started + timedelta(seconds=fired_after_s)
    return Incident.objects.create(
        rule=rule,
        labels=labels,
        fingerprint=fingerprint(rule, labels),
        severity=severity,
        state=Incident.State.FIRING,
        summary=summary,
        value=value,
        threshold=threshold,
        peak=value,
        started_at=started,
        fired_at=fired,
        notified_at=fired,
    )


def incident_resolve(incident: Incident, *, after_s: int) -> Incident:
    """Resolve a firing incident ``after_s`` seconds after it fired."""
    assert incident.fired_at is not None
    incident.state = Incident.State.RESOLVED
    incident.resolved_at = incident.fired_at + timedelta(seconds=after_s)
    incident.save(update_fields=["state", "resolved_at"])
    return incident
