"""What an incident event says on each channel: the request bodies of PagerDuty, Slack and
Microsoft Teams and the e-mail, built from one ``Notice`` (pure: no Django, no I/O).

The services fetch the incident and fill the ``Notice`` (``alerts.oncall.services.send``); this
module only computes text and JSON, so every body is tested without a database or a network.
Every channel shows the same facts (``facts``) in the schema's time zone.

Vendor formats, as documented (read them before changing a field):

- PagerDuty Events API v2, ``POST https://events.pagerduty.com/v2/enqueue``: PagerDuty's
  OpenAPI description (github.com/PagerDuty/api-schema, reference/events-v2/openapiv3.json) and
  https://developer.pagerduty.com/docs/events-api-v2/trigger-events/ . A trigger carries
  ``routing_key``, ``event_action``, ``dedup_key``, ``payload`` (``summary``, ``source`` and
  ``severity`` required; ``timestamp``, ``component``, ``group``, ``class``, ``custom_details``),
  ``links``, ``client``, ``client_url``; acknowledge and resolve need only ``routing_key``,
  ``event_action`` and the trigger's ``dedup_key``. Severity is one of critical, error, warning,
  info. The summary is cut to 1,024 characters, the documented maximum (the dedup key's is 255).
  Answers: 202 accepted; 400 invalid (not retried); 429 and 5xx retried after a while.
- Slack incoming webhook: a JSON body with ``text`` (the notification's fallback) and
  ``blocks`` (https://api.slack.com/messaging/webhooks; limits from the Block Kit reference:
  header text 150 characters, section text 3,000, at most 10 fields of 2,000). Text in mrkdwn
  escapes ``&``, ``<`` and ``>`` (https://api.slack.com/reference/surfaces/formatting), so a
  label such as a queue name cannot become a link or an ``@channel`` mention. Answers
  (https://api.slack.com/changelog/2016-05-17-changes-to-errors-for-incoming-webhooks): 200
  "ok"; 400 invalid_payload, 403 action_prohibited, 404 channel_not_found / no_service, 410
  channel_is_archived (not retried); 429 rate limited and 5xx (retried).
- Microsoft Teams incoming webhook or Workflows ("When a Teams webhook request is received"):
  a message envelope ``{"type": "message", "attachments": [{"contentType":
  "application/vnd.microsoft.card.adaptive", "contentUrl": null, "content": <Adaptive Card>}]}``
  (MicrosoftDocs/msteams-docs, webhooks-and-connectors/how-to/connectors-using.md, "Send
  adaptive cards using an incoming webhook"; ``Action.OpenUrl`` is supported there).
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

TRIGGER, ACKNOWLEDGE, RESOLVE = "trigger", "acknowledge", "resolve"
EVENTS = (TRIGGER, ACKNOWLEDGE, RESOLVE)
CLIENT = "Factory Portal"
PAGERDUTY_SUMMARY_MAX = 1024
SLACK_HEADER_MAX = 150
SLACK_SECTION_MAX = 3000
SLACK_FIELD_MAX = 2000
SLACK_FIELDS_MAX = 10
ADAPTIVE_CARD_VERSION = "1.2"
ADAPTIVE_CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
# Our severities are a subset of PagerDuty's (critical, error, warning, info).
PAGERDUTY_SEVERITY = {"critical": "critical", "warning": "warning", "info": "info"}
TEAMS_COLOR = {"critical": "Attention", "warning": "Warning", "info": "Accent"}


def dedup_key(schema: str, fingerprint: str, incident_id: int | str) -> str:
    """The one key of an incident on every channel and every event (PagerDuty matches the
    resolve to the trigger by it): stable for the incident, distinct for the next incident of
    the same rule and labels, and distinct between schemas."""
    return f"factory-portal/{schema}/{fingerprint}/{incident_id}"


@dataclass(frozen=True)
class Notice:
    """One incident event, as every channel tells it."""

    event: str  # trigger | acknowledge | resolve
    rule: str  # the rule's key
    title: str  # the rule's title
    severity: str  # critical | warning | info
    summary: str  # the incident's one line with its figures
    value: float | None
    threshold: float | None
    unit: str  # the rule's unit: "%", "jobs", " times", "s"
    labels: Mapping[str, str]
    started_at: datetime  # pending since (the condition has held since)
    fired_at: datetime | None
    resolved_at: datetime | None
    # Trigger: how long the condition has held; resolve: how long it fired.
    duration_s: float
    link: str  # absolute URL of the incident's page
    dedup_key: str
    source: str  # the tenant's slug, or "platform"
    workspace: str  # who it is about, for people: the tenant's name
    acknowledged_by: str = ""
    timezone: str = "UTC"  # where times are shown


@dataclass(frozen=True)
class Email:
    subject: str
    text: str
    html: str


# --- the words every channel shares ---------------------------------------------------------------


def figure(value: float | None, unit: str) -> str:
    """1240.0, "jobs" → "1,240 jobs"; 7.25, "%" → "7.25%"; 2.5, " times" → "2.5 times"."""
    if value is None:
        return "—"
    number = (
        f"{value:,.0f}"
        if float(value).is_integer()
        else f"{value:,.2f}".rstrip("0").rstrip(".")  # 1.001 → "1", never "1."
    )
    if unit == "%" or unit.startswith(" "):
        return f"{number}{unit}"
    return f"{number} {unit}".strip()


def elapsed_text(seconds: float) -> str:
    """45 → "45 s", 720 → "12 min", 7500 → "2 h 5 min", 97200 → "1 d 3 h"."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def local_time(moment: datetime, tz: str) -> str:
    return moment.astimezone(ZoneInfo(tz or "UTC")).strftime("%Y-%m-%d %H:%M %Z")


def headline(notice: Notice) -> str:
    """ "CRITICAL: Run failure rate high", "Resolved after 12 min: Queue depth high", …"""
    if notice.event == RESOLVE:
        return f"Resolved after {elapsed_text(notice.duration_s)}: {notice.title}"
    if notice.event == ACKNOWLEDGE:
        who = notice.acknowledged_by or "someone"
        return f"Acknowledged by {who}: {notice.title}"
    return f"{notice.severity.upper()}: {notice.title}"


def value_text(notice: Notice) -> str:
    """ "1,240 jobs (threshold 1,000 jobs)"; "" when the notice has no figures."""
    if notice.value is None and notice.threshold is None:
        return ""
    threshold = f"threshold {figure(notice.threshold, notice.unit)}"
    if notice.value is None:
        return threshold
    return f"{figure(notice.value, notice.unit)} ({threshold})"


def labels_text(labels: Mapping[str, str]) -> str:
    return ", ".join(f"{key}={value}" for key, value in sorted(labels.items()))


def facts(notice: Notice) -> list[tuple[str, str]]:
    """The facts every channel shows, in order (name, value)."""
    tz = notice.timezone
    rows = [
        ("Severity", notice.severity.capitalize()),
        ("Rule", f"{notice.title} ({notice.rule})"),
    ]
    if value_text(notice):
        rows.append(("Value", value_text(notice)))
    if notice.event == RESOLVE:
        if notice.fired_at is not None:
            rows.append(("Fired", local_time(notice.fired_at, tz)))
        resolved = notice.resolved_at or notice.started_at
        rows.append(
            ("Resolved", f"{local_time(resolved, tz)}, after {elapsed_text(notice.duration_s)}")
        )
    else:
        rows.append(
            ("Since", f"{local_time(notice.started_at, tz)}, for {elapsed_text(notice.duration_s)}")
        )
    if notice.event == ACKNOWLEDGE and notice.acknowledged_by:
        rows.append(("Acknowledged by", notice.acknowledged_by))
    if notice.labels:
        rows.append(("Labels", labels_text(notice.labels)))
    rows.append(("Workspace", notice.workspace))
    return rows


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


# --- PagerDuty ----------------------------------------------------------------------------------


def pagerduty_body(notice: Notice, *, routing_key: str) -> dict[str, Any]:
    """The Events API v2 request body. Acknowledge and resolve carry only the key and the
    trigger's ``dedup_key``: PagerDuty finds the alert by it."""
    if notice.event != TRIGGER:
        return {
            "routing_key": routing_key,
            "event_action": notice.event,
            "dedup_key": notice.dedup_key,
        }
    details: dict[str, Any] = {
        "summary": notice.summary,
        "rule": notice.rule,
        "title": notice.title,
        "value": notice.value,
        "threshold": notice.threshold,
        "unit": notice.unit.strip(),
        "labels": dict(notice.labels),
        "started_at": _iso(notice.started_at),
        "fired_at": _iso(notice.fired_at) if notice.fired_at else None,
        "for": elapsed_text(notice.duration_s),
        "workspace": notice.workspace,
        "incident": notice.link,
    }
    return {
        "routing_key": routing_key,
        "event_action": TRIGGER,
        "dedup_key": notice.dedup_key,
        "payload": {
            "summary": _clip(
                _one_line(f"{headline(notice)} — {notice.summary}"), PAGERDUTY_SUMMARY_MAX
            ),
            "source": notice.source,
            "severity": PAGERDUTY_SEVERITY.get(notice.severity, "info"),
            "timestamp": _iso(notice.fired_at or notice.started_at),
            "component": labels_text(notice.labels) or notice.source,
            "group": notice.source,
            "class": notice.rule,
            "custom_details": details,
        },
        "links": [{"href": notice.link, "text": "The incident in Factory Portal"}],
        "client": CLIENT,
        "client_url": notice.link,
    }


# --- Slack --------------------------------------------------------------------------------------


def slack_escape(text: str) -> str:
    """Slack's three control characters in mrkdwn and plain text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack_clip(escaped: str, limit: int) -> str:
    """``_clip`` of escaped text that never cuts an entity in two (``&am…`` shows as text)."""
    clipped = _clip(escaped, limit)
    if clipped == escaped:
        return clipped
    body = clipped[:-1]
    amp = body.rfind("&", max(0, len(body) - 4))
    if amp != -1 and ";" not in body[amp:]:
        body = body[:amp]
    return body + "…"


def _slack_code(text: str) -> str:
    """Inline code; a backtick inside would end it, so it becomes an apostrophe."""
    return "`" + text.replace("`", "'") + "`"


def slack_body(notice: Notice) -> dict[str, Any]:
    """A readable message: the headline, the summary, the facts as fields, and a link to the
    incident; ``text`` is what notifications and old clients show."""
    link = f"<{notice.link}|Open the incident>" if notice.link else ""
    fallback = _one_line(f"{headline(notice)} — {notice.summary}")
    shown = dict(facts(notice))
    if "Rule" in shown:  # identifiers as code: mrkdwn would read their underscores as italics
        shown["Rule"] = f"{notice.title} ({_slack_code(notice.rule)})"
    if "Labels" in shown:
        shown["Labels"] = _slack_code(shown["Labels"])
    fields = [
        {"type": "mrkdwn", "text": _slack_clip(f"*{name}*\n{slack_escape(text)}", SLACK_FIELD_MAX)}
        for name, text in shown.items()
    ][:SLACK_FIELDS_MAX]
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": _clip(headline(notice), SLACK_HEADER_MAX)},
        },
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": _slack_clip(slack_escape(notice.summary), SLACK_SECTION_MAX),
            },
            "fields": fields,
        },
    ]
    if link:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": link}})
    return {
        "text": _slack_clip(f"{slack_escape(fallback)} {link}".strip(), SLACK_SECTION_MAX),
        "blocks": blocks,
    }


# --- Microsoft Teams ----------------------------------------------------------------------------


# What Adaptive Card Markdown reads in TextBlock text and fact values: emphasis (``**``, ``_``),
# links (``[text](url)``), code and strike-through marks, and list markers at a line's start.
_TEAMS_MARKS = re.compile(r"([\\`*_\[\]~])")
_TEAMS_LIST = re.compile(r"^(\s*)(?:([-+])|(\d+)\.)(?=\s)", re.MULTILINE)


def teams_escape(text: str) -> str:
    """``text`` shown as it is by Teams: each Markdown mark backslash-escaped, so a label,
    a run id or a summary cannot italicise, drop underscores (``run_type``), make a link or a
    list."""
    marked = _TEAMS_MARKS.sub(r"\\\1", text)
    return _TEAMS_LIST.sub(lambda m: m[1] + (f"\\{m[2]}" if m[2] else f"{m[3]}\\."), marked)


def teams_body(notice: Notice) -> dict[str, Any]:
    """The Adaptive Card message envelope of Teams incoming webhooks and Workflows; the text
    the notice carries is escaped (``teams_escape``)."""
    color = "Good" if notice.event == RESOLVE else TEAMS_COLOR.get(notice.severity, "Default")
    card: dict[str, Any] = {
        "$schema": ADAPTIVE_CARD_SCHEMA,
        "type": "AdaptiveCard",
        "version": ADAPTIVE_CARD_VERSION,
        "body": [
            {
                "type": "TextBlock",
                "text": teams_escape(headline(notice)),
                "weight": "Bolder",
                "size": "Medium",
                "color": color,
                "wrap": True,
            },
            {"type": "TextBlock", "text": teams_escape(notice.summary), "wrap": True},
            {
                "type": "FactSet",
                "facts": [
                    {"title": name, "value": teams_escape(text)} for name, text in facts(notice)
                ],
            },
        ],
    }
    if notice.link:
        card["actions"] = [
            {"type": "Action.OpenUrl", "title": "Open the incident", "url": notice.link}
        ]
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": card,
            }
        ],
    }


# --- e-mail -------------------------------------------------------------------------------------


def email_message(notice: Notice) -> Email:
    """Subject (one line: Django refuses a header with a line break, and labels are client
    text), plain text and a short HTML part."""
    subject = _clip(_one_line(f"[{notice.workspace}] {headline(notice)} — {notice.summary}"), 250)
    rows = facts(notice)
    width = max(len(name) for name, _ in rows) + 2
    lines = [headline(notice), "", notice.summary, ""]
    lines += [f"{name + ':':<{width}}{text}" for name, text in rows]
    if notice.link:
        lines += ["", f"Open the incident: {notice.link}"]
    e = html.escape
    cells = "".join(
        f'<tr><th align="left" style="padding:2px 12px 2px 0">{e(name)}</th><td>{e(text)}</td></tr>'
        for name, text in rows
    )
    link = f'<p><a href="{e(notice.link)}">Open the incident</a></p>' if notice.link else ""
    body = f"<h2>{e(headline(notice))}</h2><p>{e(notice.summary)}</p><table>{cells}</table>{link}"
    return Email(subject=subject, text="\n".join(lines) + "\n", html=body)
