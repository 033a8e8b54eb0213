"""Ids chosen by clients (run, job, event, template, model) survive every page, link, CSV and API
path: hostile ids are stored as sent and shown intact, never a 500 (issue 13, item 11)."""

from __future__ import annotations

import csv
import html
import io
import json
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, unquote, urlencode, urlsplit

import pytest
from django.core.cache import cache
from django.db import transaction
from django.urls import get_resolver, resolve
from django_tenants.utils import schema_context
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from alerts.models import RunSubscription
from alerts.services.evaluate import runs_evaluate
from factory_portal.accounts.models import User
from factory_portal.spreadsheets import FORMULA_STARTS
from tests.support import bearer, key_for, llm_event_in, logged_in_client
from usage.domain.ids import MAX_ID_LENGTH, RESERVED_RUN_IDS, RESERVED_RUN_SUFFIXES, run_path
from usage.models import LlmUsageEvent, Run

pytestmark = pytest.mark.django_db

NOW = datetime.now(UTC).replace(microsecond=0)

HOSTILE = [
    "a/b",
    "/leading",
    "trailing/",
    "a//b",
    "../up",
    "a/../b",
    "a/./b",
    "..x",
    "active/x",
    "100%",
    "%2F",
    "%41",
    "a?b=c&d",
    "#fragment",
    "with spaces inside",
    "ünïcødé ☃ 🚀",
    "日本語/中文",
    "=1+1",
    "+cmd",
    "-2",
    "@SUM(A1)",
    "'quoted",
    "<script>alert(1)</script>",
    "\"'`",
    "a;b,c",
    "~user",
    "\\back\\slash",
    "runs.csv",
    "x" * MAX_ID_LENGTH,
    "/" * MAX_ID_LENGTH,
    "%" * MAX_ID_LENGTH,
    "🚀" * MAX_ID_LENGTH,
]

REFUSED = {".", "..", "active"}  # see test_ids_no_url_can_carry_are_refused_with_the_rule
# ... and run ids ending in "/guard" (see usage/tests/test_domain_ids.py)

# Printable text (no control, format or separator characters but the ASCII space): what the
# ingest accepts once surrounding whitespace is removed.
printable = st.characters(codec="utf-8", exclude_categories=("Cc", "Cf", "Cs", "Co", "Cn", "Z"))
hostile_ids = st.one_of(
    st.sampled_from(HOSTILE),
    st.lists(
        st.one_of(st.sampled_from(["/", "%", "?", "#", " ", "=", "..", "&", "+"]), printable),
        min_size=1,
        max_size=40,
    ).map("".join),
).filter(
    lambda s: (
        s == s.strip()
        and 0 < len(s) <= MAX_ID_LENGTH
        and s not in REFUSED
        and not s.endswith(RESERVED_RUN_SUFFIXES)
    )
)


@pytest.fixture
def keys(alpha):
    _, raw = key_for(alpha, ["ingest", "read"])
    return bearer(raw)


@pytest.fixture
def admin(alpha):
    return logged_in_client(alpha.host, alpha.admin_email)


def _ingest(client, auth, client_ids: list[str]) -> None:
    at = (NOW - timedelta(minutes=5)).isoformat()
    runs = [
        {
            "run_id": client_id,
            "project": "web",
            "status": "Running",
            "started_at": at,
            "template_recipe_id": client_id,
            "run_type": client_id[:64],
            "jobs": [{"job_id": client_id, "status": "Running", "started_at": at}],
        }
        for client_id in client_ids
    ]
    answer = client.post("/api/v1/runs", {"runs": runs}, content_type="application/json", **auth)
    assert answer.status_code == 200, answer.content
    events = [
        {
            "type": "llm",
            "event_id": client_id,
            "timestamp": at,
            "project": "web",
            "run_id": client_id,
            "job_id": client_id,
            "provider": "openai",
            "model": client_id,
            "input_tokens": 10,
            "output_tokens": 2,
            "cost": "0.5",
        }
        for client_id in client_ids
    ]
    answer = client.post(
        "/api/v1/events", {"events": events}, content_type="application/json", **auth
    )
    assert answer.status_code == 200, answer.content


def _ok(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    if response.streaming:
        return b"".join(response.streaming_content).decode()
    return response.content.decode()


def _cell_text(value: str) -> str:
    """What a reader of an exported cell takes as the text: the first apostrophe escapes."""
    return value[1:] if value.startswith("'") else value


def _run_link(page: str, client_id: str) -> str:
    """The href of the link whose text is the run id."""
    shown = re.escape(html.escape(client_id))
    match = re.search(rf'<a href="([^"]+)"><code>{shown}</code></a>', page)
    assert match, f"no link to run {client_id!r}"
    return html.unescape(match.group(1))


def _round_trip(alpha, client, auth, client_ids: list[str]) -> None:
    _ingest(client, auth, client_ids)
    overview = _ok(client, "/")
    costs = _ok(client, "/costs/")
    history = _ok(client, "/runs/")
    active = _ok(client, "/runs/active/")
    live = _ok(client, "/runs/active/?fragment=1")  # the page's 5-second refresh
    exported = {
        _cell_text(row[0]): row for row in csv.reader(io.StringIO(_ok(client, "/runs.csv")))
    }

    finished = [{"run_id": i, "project": "web", "status": "Succeeded"} for i in client_ids]
    client.post("/api/v1/runs", {"runs": finished}, content_type="application/json", **auth)
    user = User.objects.get(email=alpha.admin_email)
    RunSubscription.objects.update_or_create(user=user, defaults={"mode": "all"})
    alerts = runs_evaluate(run_ids=list(Run.objects.values_list("pk", flat=True)))
    alert_urls = {a.data["run_id"]: a.url for a in alerts}  # run alerts link to the run page
    inbox = _ok(client, "/notifications/")
    inbox_links = re.findall(r'class="notification-title"><a href="([^"]+)">', inbox)
    assert sorted(map(html.unescape, inbox_links)) == sorted(alert_urls.values())

    for client_id in client_ids:
        shown = html.escape(client_id)
        # The model in the top models, the template's cost per run: shown as sent, and as a
        # drill-down link to the runs it stands for (the id percent-encoded in the query).
        for page in (overview, costs):
            cell = re.search(
                r'<td><a href="(/runs/\?[^"]*)">' + re.escape(shown) + "</a></td>", page
            )
            assert cell, client_id
            assert "<" not in html.unescape(cell[1]) and " " not in cell[1]
        searched = _ok(client, "/runs/?" + urlencode({"q": client_id, "template": client_id}))
        pages = (overview, history, searched, active, live)
        [link] = {_run_link(page, client_id) for page in pages} | {alert_urls[client_id]}
        run_page = _ok(client, link)
        assert f"<h1>Run <code>{shown}</code></h1>" in run_page, link
        assert f"<td>{shown}</td>" in run_page  # the job
        timeline = re.search(r'<script id="timeline-data"[^>]*>(.*?)</script>', run_page, re.S)
        [label] = json.loads(timeline.group(1))["layout"]["yaxis"]["ticktext"]
        assert "<" not in label and html.unescape(label) == f"{client_id} #1"  # as plotly shows it

        row = exported[client_id]
        for value in (row[0], row[2]):  # run id, template
            assert _cell_text(value) == client_id and not value.startswith(FORMULA_STARTS)

        listed = client.get("/api/v1/runs?" + urlencode({"q": client_id}), **auth).json()
        assert client_id in [r["run_id"] for r in listed["results"]]
        detail = client.get("/api/v1/runs/" + quote(client_id, safe=""), **auth)
        assert detail.status_code == 200, detail.content
        body = detail.json()
        assert body["run_id"] == client_id and body["template"] == client_id
        assert [j["job_id"] for j in body["jobs"]] == [client_id]
        assert [m["model"] for m in body["models"]] == [client_id]


def _examples(test):  # type: ignore[no-untyped-def]
    """Every id of HOSTILE, five at a time."""
    for start in range(0, len(HOSTILE), 5):
        test = example(client_ids=HOSTILE[start : start + 5])(test)
    return test


@given(client_ids=st.lists(hostile_ids, min_size=1, max_size=5, unique=True))
@_examples
@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_hostile_ids_round_trip_through_every_page_link_csv_and_api(alpha, keys, admin, client_ids):
    with schema_context(alpha.schema), transaction.atomic():
        cache.clear()
        try:
            _round_trip(alpha, admin, keys, client_ids)
        finally:
            transaction.set_rollback(True)  # each example starts from an empty tenant


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("run_id", "a\x00b", "printable"),
        ("run_id", "line\nbreak", "printable"),
        ("run_id", "bidi\u202eoverride", "printable"),
        ("run_id", "x" * (MAX_ID_LENGTH + 1), f"at most {MAX_ID_LENGTH}"),
        ("run_id", "..", "'.' or '..'"),
        ("run_id", ".", "'.' or '..'"),
        ("run_id", "active", "reserved"),
        ("run_id", "   ", "non-empty"),
    ],
)
def test_ids_no_url_can_carry_are_refused_with_the_rule(admin, keys, field, value, message):
    item = {"run_id": "r1", "project": "web", "status": "Running", field: value}
    answer = admin.post("/api/v1/runs", {"runs": [item]}, content_type="application/json", **keys)
    assert answer.status_code == 422
    [error] = answer.json()["errors"]
    assert error["field"] == field and message in error["message"]


def test_routes_take_client_ids_last_so_every_path_is_unambiguous():
    """Servers decode %2F before routing: a route must match an id with the ``path`` converter
    and end with it (a sub-route after it could not be told from an id containing "/") unless
    the sub-route's ending is one no run id may have (``RESERVED_RUN_SUFFIXES``), listed first;
    and a fixed page the id route would also match must be listed first and its name reserved."""
    patterns = get_resolver("web.urls_tenants").url_patterns
    id_routes = [
        (index, str(p.pattern))
        for index, p in enumerate(patterns)
        if {"run_id", "job_id", "event_id"} & set(p.pattern.converters)
    ]
    below_run = [(i, r) for i, r in id_routes if r.endswith(RESERVED_RUN_SUFFIXES)]
    assert [r for _, r in below_run] == ["api/v1/runs/<path:run_id>/guard"]
    assert len(id_routes) == 3
    for index, route in id_routes:
        if (index, route) in below_run:
            catch_all = route.removesuffix("/guard")
            assert index < next(i for i, r in id_routes if r == catch_all), route
            continue
        assert re.fullmatch(r"[^<]*<path:(run_id|job_id|event_id)>/?", route), route
        prefix = route.split("<")[0]
        for other_index, other in enumerate(patterns):
            other_route = str(other.pattern)
            name = other_route.removeprefix(prefix).rstrip("/")
            if other_index == index or other_route == prefix or not other_route.startswith(prefix):
                continue  # an id is at least one character: "runs/" is not a run's page
            if (other_index, other_route) in below_run:
                continue  # its ending is refused in run ids (id_check)
            assert other_index < index and name in RESERVED_RUN_IDS, (route, str(other.pattern))
    for client_id in HOSTILE:
        match = resolve(unquote(run_path(client_id)), "web.urls_tenants")
        assert (match.url_name, match.kwargs) == ("run-detail", {"run_id": client_id})


@pytest.mark.parametrize("path", ["a%00b", "x" * 5000, "%2F", "a%2F..%2F", "%C3%28"])
def test_run_urls_naming_no_run_answer_404(admin, keys, path):
    assert admin.get(f"/runs/{path}/").status_code == 404
    answer = admin.get(f"/api/v1/runs/{path}", **keys)
    assert answer.status_code == 404
    assert answer["Content-Type"] == "application/problem+json"


def test_a_run_alert_email_names_the_run_as_sent_and_links_to_its_page(
    alpha, keys, admin, mailoutbox
):
    from alerts.models import Delivery
    from alerts.services.deliver import delivery_send

    client_id = "a&b <c> 'd' 日本/語 ?#%"
    with schema_context(alpha.schema):
        _ingest(admin, keys, [client_id])
        done = {"runs": [{"run_id": client_id, "project": "web", "status": "Succeeded"}]}
        admin.post("/api/v1/runs", done, content_type="application/json", **keys)
        user = User.objects.get(email=alpha.admin_email)
        RunSubscription.objects.create(user=user, mode="all", email="each")
        runs_evaluate(run_ids=[Run.objects.get(run_id=client_id).pk])
        [delivery] = Delivery.objects.filter(channel=Delivery.Channel.EMAIL)
        assert delivery_send(delivery.pk).status == "sent"
        [mail] = mailoutbox
        assert client_id in mail.subject
        assert f"Run {client_id} succeeded" in mail.body  # plain text: not HTML-escaped
        link = re.search(r"Details: (\S+)", mail.body).group(1)
        assert link.isascii() and f'href="{link}"' in mail.alternatives[0][0]
        page = _ok(admin, urlsplit(link).path)
    assert f"<h1>Run <code>{html.escape(client_id)}</code></h1>" in page


def test_control_characters_from_spans_or_older_data_never_break_an_export(alpha, keys, admin):
    from usage.pricing import pricer_for
    from usage.services.ingest import events_ingest
    from usage.tests.otlp_spans import factory_run_spans
    from usage.tests.test_api_traces import post_spans

    _, ingest_key = key_for(alpha, ["ingest"])
    model = {"gen_ai.request.model": "gpt\x01x", "gen_ai.response.model": "gpt\x01x"}
    spans = factory_run_spans(llm_attributes=model)
    assert post_spans(alpha.host, ingest_key, spans).status_code == 200
    with schema_context(alpha.schema):
        assert LlmUsageEvent.objects.filter(model="gpt x").exists()  # a space, as REST refuses
        older = llm_event_in("older", NOW - timedelta(hours=1), project="web", model="m\x02\x1f")
        events_ingest(events=[older], pricer=pricer_for(alpha.tenant))
    month = NOW.strftime("%Y-%m")
    for fmt in ("csv", "xlsx", "focus"):
        assert admin.get(f"/reports/{month}/{fmt}").status_code == 200, fmt
    answer = admin.get(f"/api/v1/reports/monthly?month={month}&format=xlsx", **keys)
    assert answer.status_code == 200
