"""A lone surrogate (``"\\ud800"``, valid JSON text that no UTF-8 string can hold) in a request
body: every endpoint refuses it with a problem, never a 500. A review found four that answered
500 because the refusal quoted the input (an unknown field name, a value not among the choices)
and UTF-8 could not encode the answer (``factory_portal.api.JSONRenderer``)."""

from __future__ import annotations

import json

import pytest

from tests.support import bearer, host_client, key_for

pytestmark = pytest.mark.django_db

LONE = "\\ud800"  # as the JSON text writes it

CASES = [
    ("/api/v1/events", "ingest", '{"events": [{"type": "llm", "LONE": 1}]}'),
    ("/api/v1/runs", "ingest", '{"runs": [{"run_id": "r1", "LONE": 1}]}'),
    ("/api/v1/budgets", "manage", '{"amount": "10", "basis": "LONE"}'),
    ("/api/v1/silences", "manage", '{"rule": "factory_queue_depth_high", "duration": "LONE"}'),
]


@pytest.mark.parametrize(("path", "scope", "body"), CASES, ids=[c[0] for c in CASES])
def test_a_lone_surrogate_is_refused_with_a_problem(alpha, path, scope, body):
    _, raw = key_for(alpha, [scope])
    response = host_client(alpha.host).post(
        path, body.replace("LONE", LONE).encode(), content_type="application/json", **bearer(raw)
    )
    assert 400 <= response.status_code < 500, response.content[:300]
    assert response["Content-Type"].startswith("application/problem+json")
    problem = json.loads(response.content)  # escaped where it quotes the input: still JSON
    assert problem["status"] == response.status_code
    assert b"\\ud800" in response.content  # the quoted input, escaped


def test_other_text_stays_utf8(alpha):
    """Only a body that UTF-8 cannot hold is escaped: names in other scripts read as they are."""
    _, raw = key_for(alpha, ["ingest"])
    response = host_client(alpha.host).post(
        "/api/v1/events",
        b'{"events": [{"type": "llm", "\xc3\xa9t\xc3\xa9": 1}]}',
        content_type="application/json",
        **bearer(raw),
    )
    assert response.status_code in (400, 422)
    assert "été".encode() in response.content
