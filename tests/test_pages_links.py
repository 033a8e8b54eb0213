"""No dead ends by role: a crawler signs in as each tenant role, follows every same-site link the
pages offer (from the navigation down) and asserts none answers 403 (a link the role may not
open) or an error. Seeded so that run links appear wherever pages show runs: finished, failed
and active runs, AI cost, a run alert to the user and a failure-rate notification."""

from __future__ import annotations

import re
from collections import deque
from decimal import Decimal
from html import unescape
from urllib.parse import urljoin, urlsplit

import pytest
from django_tenants.utils import schema_context

from billing.models import RunGuard
from billing.services import run_budget_set, run_guards_refresh
from factory_portal.accounts.models import Role
from notifications.services import notification_create
from tests.support import (
    FINANCE,
    MEMBER,
    RUNS_START,
    llm_spend,
    logged_in_client,
    runs_make,
    user_make,
)

pytestmark = pytest.mark.django_db

HREF = re.compile(r'<a\s[^>]*href="([^"#]*)')
# Leaving the site or the session, or files that are not pages.
SKIPPED = ("/logout/", "/static/", "/favicon.ico", "/api/docs/", "/api/schema/")
MAX_PAGES = 120  # pages whose links are followed (each distinct path once, a few queries each)
MAX_LINKS = 400  # links checked


def _links(page: str, at: str) -> list[str]:
    found = []
    for raw in HREF.findall(page):
        href = unescape(raw)
        if not href or href.startswith(("mailto:", "javascript:")):
            continue
        url = urljoin(at, href)
        parts = urlsplit(url)
        if parts.scheme and parts.netloc not in ("", "testserver"):
            continue
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        if not path.startswith(SKIPPED):
            found.append(path)
    return found


def _crawl(client) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """Every link reached from ``/`` with the status it answered."""
    seen: dict[str, int] = {}
    expanded: dict[str, int] = {}
    queue = deque(["/"])
    while queue and len(seen) < MAX_LINKS:
        url = queue.popleft()
        if url in seen:
            continue
        response = client.get(url)
        seen[url] = response.status_code
        path = urlsplit(url).path
        html = response.get("Content-Type", "").startswith("text/html")
        if response.status_code != 200 or not html or expanded.get(path, 0) >= 3:
            continue
        if sum(expanded.values()) >= MAX_PAGES:
            continue
        expanded[path] = expanded.get(path, 0) + 1
        queue.extend(link for link in _links(response.content.decode(), url) if link not in seen)
    return seen


def _seed(alpha) -> None:  # type: ignore[no-untyped-def]
    runs_make(alpha, 3)
    runs_make(alpha, 2, status="Failed", prefix="bad")
    runs_make(alpha, 2, status="Running", prefix="live")
    llm_spend(alpha, RUNS_START, "1.25", "0.50")
    finance = user_make(alpha, FINANCE, Role.FINANCE)
    member = user_make(alpha, MEMBER, Role.MEMBER)
    with schema_context(alpha.schema):
        for user in (finance, member):
            notification_create(
                kind="run", title="Run bad-000 failed", url="/runs/bad-000/", user=user
            )
        notification_create(
            kind="failure_rate", title="Failure rate 40%", url="/runs/?status=Failed"
        )
        # Running runs under a run budget: the run budgets page lists them (to finance too)
        # and the active runs page names the run budgets (to members too).
        run_budget_set(template="react-spa", amount=Decimal("5"))
        run_guards_refresh()
        assert RunGuard.objects.filter(run__run_id="live-000").exists()


# An admin may open every page: only the roles that may not are crawled.
@pytest.mark.parametrize("role", ["finance", "member"])
def test_every_link_a_role_is_offered_opens(alpha, role):
    _seed(alpha)
    email = {"finance": FINANCE, "member": MEMBER}[role]
    seen = _crawl(logged_in_client(alpha.host, email))
    assert len(seen) > 10  # the crawl reached the site's pages
    dead = {url: status for url, status in seen.items() if status not in (200, 302)}
    assert dead == {}
    if role == "finance":  # the run alert and the failure-rate notice name runs without links
        assert not any(urlsplit(url).path.startswith("/runs") for url in seen)
    else:
        assert "/runs/bad-000/" in seen and "/runs/?status=Failed" in seen
