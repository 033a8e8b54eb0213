"""Every list of the JSON API pages the same way (``factory_portal.pagination``): walking
``next_cursor`` (or ``next``) a few rows at a time lists every row once, in the order of one big
page, with ties in the ordering; the numbered pages of before still answer, marked deprecated;
cursors are useless anywhere but the tenant and list they came from; the schema documents the
same paging parameters and answer on every list; enumerated filters take any letter case."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from urllib.parse import quote

import pytest
from django.utils import timezone
from django_tenants.utils import schema_context
from drf_spectacular.generators import SchemaGenerator

from alerts.models import WebhookEndpoint
from alerts.oncall.models import Silence
from alerts.oncall.tests.incident_rows import QUEUE, incident_make
from billing.models import Budget, RunBudget
from billing.operator.models import AllocationRule, Commitment
from tests.support import bearer, host_client, key_for, notifications_make, runs_make
from usage.models import Project
from usage.tests.errors_data import error_make

pytestmark = pytest.mark.django_db

ROWS = 7
AT = datetime(2026, 11, 10, 12, tzinfo=UTC)

# path -> the field that names a row
LISTS = {
    "/api/v1/projects": "slug",
    "/api/v1/notifications": "id",
    "/api/v1/budgets": "id",
    "/api/v1/commitments": "id",
    "/api/v1/run-budgets": "id",
    "/api/v1/webhooks": "id",
    "/api/v1/runs": "run_id",
    "/api/v1/errors": "fingerprint",
    "/api/v1/alerts": "id",
    "/api/v1/silences": "id",
}
QUERY = {"/api/v1/errors": "start=2026-11-01&end=2026-11-30"}


def _rows_make(tenant, *, tag: str = "") -> None:
    """``ROWS`` rows of every list; alerts, silences and webhooks tie on their first ordering
    field (the cursor's position), so the pages must break ties."""
    runs_make(tenant, ROWS, prefix=f"run{tag}")
    notifications_make(tenant, ROWS)
    for i in range(ROWS):
        error_make(
            tenant, f"err{tag}-{i}", AT, error_type=f"E{tag}{i}", message=f"m{i}", span=f"s{i}"
        )
    now = timezone.now()
    with schema_context(tenant.schema):
        for i in range(ROWS):
            Project.objects.get_or_create(slug=f"p{tag}{i}", defaults={"name": f"P{i}"})
            Budget.objects.create(project=f"p{tag}{i}", amount=Decimal("100.00"))
            # Ties on the scope's project: the pages must break them.
            RunBudget.objects.create(project="", template=f"t{tag}{i}", amount=Decimal(5))
            WebhookEndpoint.objects.create(
                name="ops", url=f"https://hooks.example.com/{i}", secret="s" * 32
            )
            incident_make(QUEUE, {"queue_name": f"q{i}"}, summary=f"Queue {tag}{i}", now=now)
            Silence.objects.create(
                ends_at=now + timedelta(hours=1), reason=f"r{i}", created_by="ops@x.test"
            )
            Commitment.objects.create(  # all end on one day: the pages break the tie
                tenant=tenant.tenant,
                name=f"c{tag}{i}",
                amount=Decimal("100.00"),
                currency="USD",
                start_date=date(2026, 10, 1),
                end_date=date(2026, 12, 31),
            )


@pytest.fixture
def lists(alpha, beta):
    _rows_make(alpha)
    _rows_make(beta, tag="b")
    _, raw = key_for(alpha, ["read", "manage"])
    return host_client(alpha.host), bearer(raw)


def _url(path: str, query: str = "") -> str:
    joined = "&".join(q for q in (QUERY.get(path, ""), query) if q)
    return f"{path}?{joined}" if joined else path


def _walk(client, auth, path: str, *, limit: int, by_url: bool) -> list[object]:
    key, seen, url = LISTS[path], [], _url(path, f"limit={limit}")
    for _ in range(100):
        body = client.get(url, **auth).json()
        assert set(body) >= {"results", "next", "next_cursor"}, body
        assert len(body["results"]) <= limit
        seen += [row[key] for row in body["results"]]
        if body["next_cursor"] is None:
            assert body["next"] is None
            return seen
        assert f"cursor={quote(body['next_cursor'], safe='')}" in body["next"]
        url = body["next"] if by_url else _url(path, f"limit={limit}&cursor={body['next_cursor']}")
    raise AssertionError(f"{path}: pages never end")


@pytest.mark.parametrize("path", list(LISTS))
@pytest.mark.parametrize(("limit", "by_url"), [(1, False), (3, True)])
def test_cursor_pages_list_every_row_once_in_order(lists, path, limit, by_url):
    client, auth = lists
    whole = client.get(_url(path, "limit=200"), **auth).json()
    assert whole["next_cursor"] is None
    everything = [row[LISTS[path]] for row in whole["results"]]
    assert len(everything) >= ROWS and len(set(everything)) == len(everything)
    assert not {"pb0", "runb-000"} & set(everything)  # beta's project and run
    assert _walk(client, auth, path, limit=limit, by_url=by_url) == everything


@pytest.mark.parametrize("path", [p for p in LISTS if p not in ("/api/v1/runs",)])
def test_numbered_pages_still_answer_with_a_deprecation(lists, path):
    client, auth = lists
    answer = client.get(_url(path, "page=1"), **auth)
    assert answer.status_code == 200
    assert answer["Deprecation"].startswith("@")
    assert 'rel="successor-version"' in answer["Link"] and 'rel="deprecation"' in answer["Link"]
    assert "page=" not in answer["Link"].split(";")[0]
    body = answer.json()
    assert body["next_cursor"] is None and body["next"] is None
    if path == "/api/v1/errors":
        assert body["page"] == 1 and body["pages"] == 1
    else:
        assert body["count"] == len(body["results"]) and body["previous"] is None


def test_a_cursor_is_useless_in_another_tenant_or_list(lists, beta):
    client, auth = lists
    cursor = client.get("/api/v1/runs?limit=2", **auth).json()["next_cursor"]
    _, theirs = key_for(beta, ["read"])
    refused = host_client(beta.host).get(f"/api/v1/runs?cursor={cursor}", **bearer(theirs))
    assert refused.status_code == 400
    assert refused["Content-Type"] == "application/problem+json"
    assert "cursor" in refused.json()["errors"]
    elsewhere = client.get(f"/api/v1/alerts?cursor={cursor}", **auth)
    assert elsewhere.status_code == 400 and "cursor" in elsewhere.json()["errors"]
    edited = client.get(f"/api/v1/runs?cursor={cursor[:-2]}xx", **auth)
    assert edited.status_code == 400


@pytest.mark.parametrize("path", list(LISTS))
@pytest.mark.parametrize(
    "query", ["limit=0", "limit=201", "limit=x", "cursor=bm9wZQ", "cursor=%00"]
)
def test_bad_paging_parameters_are_a_problem(lists, path, query):
    client, auth = lists
    answer = client.get(_url(path, query), **auth)
    assert answer.status_code == 400, answer.content
    assert answer.json()["errors"].keys() & {"limit", "cursor"}


def test_the_operators_rules_page_too(operator):
    for i in range(5):
        AllocationRule.objects.create(name="same", fixed_amount=Decimal(i))
    seen, url = [], "/api/v1/allocation-rules?limit=2"
    while url:
        body = operator.get(url).json()
        seen += [r["id"] for r in body["results"]]
        url = body["next"]
    assert seen == sorted(seen) and len(seen) == len(set(seen)) == 5


def test_lists_keep_their_roles(lists, alpha):
    client, _ = lists
    _, read_only = key_for(alpha, ["read"])
    _, ingest = key_for(alpha, ["ingest"])
    assert client.get("/api/v1/webhooks", **bearer(read_only)).status_code == 403
    for path in LISTS:
        assert client.get(_url(path), **bearer(ingest)).status_code == 403, path
        assert client.get(_url(path)).status_code in (401, 403), path


@pytest.mark.parametrize(
    "query",
    [
        "/api/v1/runs?status=FAILED&sort=Newest",
        "/api/v1/runs?status=failed",
        "/api/v1/usage?granularity=DAY&group_by=Project,UNIT",
        "/api/v1/costs?granularity=Month&group_by=PROJECT",
        "/api/v1/steps?by=Template&sort=FAILURE_RATE",
        "/api/v1/errors?sort=NEWEST",
        "/api/v1/alerts?state=FIRING&severity=Critical&rule=FACTORY_QUEUE_DEPTH_HIGH",
        "/api/v1/silences?state=Active",
    ],
)
def test_enumerated_filters_take_any_letter_case(lists, query):
    client, auth = lists
    assert client.get(query, **auth).status_code == 200


@pytest.mark.parametrize(
    ("query", "field", "named"),
    [
        ("/api/v1/runs?status=broken", "status", "Succeeded"),
        ("/api/v1/runs?sort=nope", "sort", "newest"),
        ("/api/v1/usage?granularity=minute", "granularity", "hour, day, week or month"),
        ("/api/v1/usage?group_by=colour", "group_by", "resource_type"),
        ("/api/v1/steps?by=team", "by", "step or template"),
        ("/api/v1/errors?sort=loudest", "sort", "frequent"),
        ("/api/v1/silences?state=maybe", "state", "active or ended"),
    ],
)
def test_unknown_enum_values_name_the_allowed_ones(lists, query, field, named):
    client, auth = lists
    answer = client.get(query, **auth)
    assert answer.status_code == 400
    assert answer["Content-Type"] == "application/problem+json"
    assert named in str(answer.json()["errors"][field])


def _list_operations(urlconf: str) -> dict[str, dict]:
    schema = SchemaGenerator(urlconf=urlconf).get_schema(request=None, public=True)
    found = {}
    for path, item in schema["paths"].items():
        get = item.get("get")
        if not get:
            continue
        content = get["responses"]["200"].get("content", {}).get("application/json", {})
        page = content.get("schema", {})
        if "$ref" in page:
            page = schema["components"]["schemas"][page["$ref"].rsplit("/", 1)[1]]
        if "results" in page.get("properties", {}):
            found[path] = {"operation": get, "page": page}
    return found


def test_the_schema_documents_one_paging_on_every_list():
    tenant = _list_operations("web.urls_tenants")
    public = _list_operations("web.urls_public")
    assert set(tenant) == set(LISTS)
    assert set(public) == {"/api/v1/allocation-rules"}
    parameters = set()
    for path, found in {**tenant, **public}.items():
        given = {p["name"]: p for p in found["operation"].get("parameters", [])}
        paging = {name: given[name] for name in ("cursor", "limit")}
        parameters.add(repr(sorted((n, sorted(p["schema"].items())) for n, p in paging.items())))
        if "page" in given:
            assert given["page"].get("deprecated") is True, path
        page = found["page"]
        assert {"results", "next", "next_cursor"} <= set(page["required"]), path
        assert page["properties"]["results"]["type"] == "array", path
        assert page["properties"]["next_cursor"]["nullable"] is True, path
        assert "count" not in page["properties"], path
    assert len(parameters) == 1, parameters


def test_the_schema_names_the_enum_values():
    schema = SchemaGenerator(urlconf="web.urls_tenants").get_schema(request=None, public=True)
    runs = {p["name"]: p for p in schema["paths"]["/api/v1/runs"]["get"]["parameters"]}
    assert set(runs["status"]["schema"]["enum"]) >= {"Failed", "Succeeded"}
    assert "any letter case" in runs["status"]["description"]


@pytest.mark.parametrize("path", list(LISTS))
def test_a_limit_written_as_a_decimal_is_read_as_the_whole_number(lists, path):
    """DRF's integer field reads "2.0" as 2: every list pages by it (it was a 500 once)."""
    client, auth = lists
    answer = client.get(_url(path, "limit=2.0"), **auth)
    assert answer.status_code == 200, answer.content
    assert len(answer.json()["results"]) <= 2
