"""The request bodies of each channel, built from one notice (pure: no database, no network):
PagerDuty's documented trigger and its minimal acknowledge and resolve under the same dedup key,
a readable Slack message that no label can turn into a link or mention, the Teams Adaptive Card
envelope, and an e-mail whose subject stays on one line."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from alerts.oncall.domain.payloads import (
    Notice,
    dedup_key,
    elapsed_text,
    email_message,
    facts,
    figure,
    pagerduty_body,
    slack_body,
    teams_body,
)
from alerts.oncall.tests.receivers import (
    PAGERDUTY_KEY,
    pagerduty_errors,
    slack_errors,
    teams_errors,
)

STARTED = datetime(2026, 11, 20, 13, 2, tzinfo=UTC)
LINK = "https://alpha.portal.example/alerts/7/"
KEY = dedup_key("alpha", "0f" * 16, 7)
TRIGGER = Notice(
    event="trigger",
    rule="factory_queue_depth_high",
    title="Queue depth high",
    severity="warning",
    summary="Queue q1: 1,240 jobs waiting (over 1,000)",
    value=1240.0,
    threshold=1000.0,
    unit="jobs",
    labels={"queue_name": "q1"},
    started_at=STARTED,
    fired_at=STARTED + timedelta(minutes=10),
    resolved_at=None,
    duration_s=600,
    link=LINK,
    dedup_key=KEY,
    source="alpha",
    workspace="Alpha Inc",
    timezone="Europe/Berlin",
)
RESOLVE = replace(
    TRIGGER, event="resolve", resolved_at=STARTED + timedelta(minutes=22), duration_s=720
)


def test_the_dedup_key_names_schema_fingerprint_and_incident():
    assert dedup_key("alpha", "0f" * 16, 7) == f"factory-portal/alpha/{'0f' * 16}/7"
    assert dedup_key("alpha", "0f" * 16, 8) != KEY
    assert dedup_key("beta", "0f" * 16, 7) != KEY


def test_figures_durations_and_times_read_like_a_person_wrote_them():
    assert figure(1240.0, "jobs") == "1,240 jobs"
    assert figure(7.25, "%") == "7.25%"
    assert figure(2.5, " times") == "2.5 times"
    assert figure(None, "s") == "—"
    assert figure(2 / 201 * 100, "%") == "1%"  # 0.995 rounds to 1.00: no "1.%"
    assert figure(1.5, "%") == "1.5%"
    assert [elapsed_text(s) for s in (45, 720, 7500, 97200)] == [
        "45 s",
        "12 min",
        "2 h 5 min",
        "1 d 3 h",
    ]
    shown = dict(facts(TRIGGER))
    assert shown["Value"] == "1,240 jobs (threshold 1,000 jobs)"
    assert shown["Since"] == "2026-11-20 14:02 CET, for 10 min"  # the tenant's zone, not UTC
    assert shown["Labels"] == "queue_name=q1"
    assert dict(facts(RESOLVE))["Resolved"] == "2026-11-20 14:24 CET, after 12 min"


def test_pagerduty_trigger_has_every_documented_field():
    body = pagerduty_body(TRIGGER, routing_key=PAGERDUTY_KEY)
    assert pagerduty_errors(body) == []
    assert body["routing_key"] == PAGERDUTY_KEY
    assert body["event_action"] == "trigger"
    assert body["dedup_key"] == KEY
    payload = body["payload"]
    assert payload["summary"] == (
        "WARNING: Queue depth high — Queue q1: 1,240 jobs waiting (over 1,000)"
    )
    assert payload["source"] == "alpha"
    assert payload["severity"] == "warning"
    assert payload["timestamp"] == "2026-11-20T13:12:00Z"
    assert payload["component"] == "queue_name=q1"
    assert payload["group"] == "alpha"
    assert payload["class"] == "factory_queue_depth_high"
    details = payload["custom_details"]
    assert details["value"] == 1240.0 and details["threshold"] == 1000.0
    assert details["labels"] == {"queue_name": "q1"} and details["incident"] == LINK
    assert body["links"] == [{"href": LINK, "text": "The incident in Factory Portal"}]
    assert body["client"] == "Factory Portal" and body["client_url"] == LINK
    json.dumps(body)  # plain JSON, nothing a serializer would choke on


def test_pagerduty_acknowledge_and_resolve_carry_only_the_key_and_the_same_dedup_key():
    for event in ("acknowledge", "resolve"):
        body = pagerduty_body(replace(TRIGGER, event=event), routing_key=PAGERDUTY_KEY)
        assert body == {"routing_key": PAGERDUTY_KEY, "event_action": event, "dedup_key": KEY}
        assert pagerduty_errors(body) == []


def test_pagerduty_summary_is_cut_to_its_documented_maximum():
    long = replace(TRIGGER, summary="x" * 5000, severity="critical")
    payload = pagerduty_body(long, routing_key=PAGERDUTY_KEY)["payload"]
    assert len(payload["summary"]) == 1024 and payload["summary"].endswith("…")
    assert payload["severity"] == "critical"


def test_slack_message_shows_severity_rule_figures_since_labels_and_a_link():
    body = slack_body(TRIGGER)
    assert slack_errors(body) == []
    assert body["text"].startswith("WARNING: Queue depth high — Queue q1: 1,240 jobs waiting")
    header, section, link = body["blocks"]
    assert header["text"] == {"type": "plain_text", "text": "WARNING: Queue depth high"}
    assert section["text"]["text"] == "Queue q1: 1,240 jobs waiting (over 1,000)"
    fields = [f["text"] for f in section["fields"]]
    assert "*Severity*\nWarning" in fields
    assert "*Rule*\nQueue depth high (`factory_queue_depth_high`)" in fields
    assert "*Value*\n1,240 jobs (threshold 1,000 jobs)" in fields
    assert "*Since*\n2026-11-20 14:02 CET, for 10 min" in fields
    assert "*Labels*\n`queue_name=q1`" in fields
    assert link["text"]["text"] == f"<{LINK}|Open the incident>"


def test_slack_resolve_says_after_how_long():
    body = slack_body(RESOLVE)
    assert body["blocks"][0]["text"]["text"] == "Resolved after 12 min: Queue depth high"
    assert body["text"].startswith("Resolved after 12 min: Queue depth high")


def test_a_label_cannot_become_a_slack_link_or_mention():
    hostile = replace(
        TRIGGER,
        labels={"queue_name": "<!channel> <https://evil.example|click>"},
        summary="Queue <!here>: 1,240 & more",
    )
    body = slack_body(hostile)
    text = json.dumps(body)
    assert "<!channel>" not in text and "<!here>" not in text and "<https://evil" not in text
    assert "&lt;!channel&gt;" in text and "1,240 &amp; more" in text
    ticks = slack_body(replace(TRIGGER, labels={"queue_name": "a` *b*"}))["blocks"][1]["fields"]
    assert "*Labels*\n`queue_name=a' *b*`" in [f["text"] for f in ticks]  # stays inside the code


def test_slack_header_stays_within_block_kit_limits():
    long = replace(TRIGGER, title="T" * 400)
    body = slack_body(long)
    assert len(body["blocks"][0]["text"]["text"]) == 150
    assert slack_errors(body) == []


def test_a_slack_text_cut_at_its_limit_never_splits_an_entity():
    """Cut after escaping, "&amp;" cut in two showed as "&am…" (a review found it)."""
    for pad in range(2996, 3001):  # every place an "&amp;" can straddle the 3,000th character
        summary = "x" * pad + "&" * 10
        section = slack_body(replace(TRIGGER, summary=summary))["blocks"][1]["text"]["text"]
        assert len(section) <= 3000 and section.endswith("…")
        body = section[:-1]
        assert body.replace("&amp;", "").count("&") == 0, section[-12:]
        assert slack_errors(slack_body(replace(TRIGGER, summary=summary))) == []


def test_teams_message_is_the_documented_adaptive_card_envelope():
    body = teams_body(TRIGGER)
    assert teams_errors(body) == []
    (attachment,) = body["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert attachment["contentUrl"] is None
    card = attachment["content"]
    assert card["$schema"] == "http://adaptivecards.io/schemas/adaptive-card.json"
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.2"
    title, summary, factset = card["body"]
    assert title["text"] == "WARNING: Queue depth high" and title["color"] == "Warning"
    assert summary["text"] == TRIGGER.summary
    assert {"title": "Value", "value": "1,240 jobs (threshold 1,000 jobs)"} in factset["facts"]
    assert card["actions"] == [
        {"type": "Action.OpenUrl", "title": "Open the incident", "url": LINK}
    ]
    resolved = teams_body(RESOLVE)["attachments"][0]["content"]["body"][0]
    assert resolved["text"] == "Resolved after 12 min: Queue depth high"
    assert resolved["color"] == "Good"


def test_teams_shows_client_text_as_it_is():
    """Adaptive Card Markdown read a label's underscores as emphasis (``run_type`` lost them),
    and could make a link or a list of a summary: every mark is escaped."""
    hostile = replace(
        TRIGGER,
        summary="- [click](https://evil.example) **now**\n2. second_line",
        labels={"run_type": "bug_fix"},
    )
    card = teams_body(hostile)["attachments"][0]["content"]
    summary = card["body"][1]["text"]
    assert summary == "\\- \\[click\\](https://evil.example) \\*\\*now\\*\\*\n2\\. second\\_line"
    facts_shown = {f["title"]: f["value"] for f in card["body"][2]["facts"]}
    assert facts_shown["Labels"] == "run\\_type=bug\\_fix"
    assert facts_shown["Rule"] == "Queue depth high (factory\\_queue\\_depth\\_high)"
    assert teams_errors(teams_body(hostile)) == []


def test_email_subject_is_one_line_and_text_and_html_carry_the_facts():
    mail = email_message(
        replace(TRIGGER, summary="Queue q1\r\nBcc: victim@example.test: <b>1,240</b>")
    )
    assert "\n" not in mail.subject and "\r" not in mail.subject
    assert mail.subject.startswith("[Alpha Inc] WARNING: Queue depth high — Queue q1 Bcc:")
    assert "Value:     1,240 jobs (threshold 1,000 jobs)" in mail.text
    assert f"Open the incident: {LINK}" in mail.text
    assert "&lt;b&gt;1,240&lt;/b&gt;" in mail.html and "<b>1,240</b>" not in mail.html
    assert f'<a href="{LINK}">Open the incident</a>' in mail.html


def test_email_for_resolve_and_acknowledge():
    assert email_message(RESOLVE).subject.startswith(
        "[Alpha Inc] Resolved after 12 min: Queue depth high"
    )
    ack = email_message(replace(TRIGGER, event="acknowledge", acknowledged_by="kim@alpha.test"))
    assert ack.subject.startswith("[Alpha Inc] Acknowledged by kim@alpha.test: Queue depth high")
    assert "Acknowledged by: kim@alpha.test" in ack.text
