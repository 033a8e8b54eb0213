"""Read replicas against a real streaming replica of the test server (``tests/replica_support``).

The replica is a hot standby started for this module (``pg_basebackup`` of the test cluster, a
second ``postgres`` on a free port); the portal reaches it as ``replica_0``. The tests commit
for real (a replica only sees committed rows), in a tenant of their own that is dropped at the
end, so they are not ``django_db`` tests (no rolled-back transaction, no flush).

Which server answered is proved by rows the replica does not have yet: its replay is paused
(``pg_wal_replay_pause()``) while the primary takes a write, so a request that sees the new row
read the primary and one that does not read the replica; and by the ``db_reads`` and
``db_replica_fallbacks`` metrics.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import psycopg
import psycopg.sql
import pytest
from django.db import connections
from django_tenants.utils import schema_context
from prometheus_client import REGISTRY

from billing.models import Budget
from factory_portal import db_routing
from factory_portal.accounts.services import api_key_revoke
from factory_portal.db_routing import ReadState, read_alias, read_connection, reads_state
from factory_portal.tenants.services import tenant_create, tenant_delete, tenant_domain
from tests.replica_support import ReplicaUnavailable, StreamingReplica, streaming_replica
from tests.replica_support import wait_replayed as replica_wait_replayed
from tests.support import PASSWORD, bearer, host_client, key_for, logged_in_client
from tests.support import TestTenant as ReplicaTenant
from usage.models import Project

ALIAS = "replica_0"
PROJECTS = ("direct", "written", "read-own", "lagging")


def _sample(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def replica_reads() -> float:
    return _sample("db_reads_total", {"target": ALIAS})


def fallbacks(reason: str) -> float:
    return _sample("db_replica_fallbacks_total", {"reason": reason})


@pytest.fixture(scope="module")
def replica(django_db_setup, django_db_blocker) -> Iterator[StreamingReplica]:  # type: ignore[no-untyped-def]
    try:
        with streaming_replica() as running:
            primary = connections["default"].settings_dict
            connections.settings[ALIAS] = {
                **primary,
                "HOST": running.host,
                "PORT": running.port,
                "TEST": {"MIRROR": "default"},
            }
            db_routing.health_forget()
            try:
                yield running
            finally:
                connections[ALIAS].close()
                del connections[ALIAS]
                del connections.settings[ALIAS]
                db_routing.health_forget()
    except ReplicaUnavailable as exc:
        pytest.skip(f"no streaming replica here: {exc}")


@pytest.fixture(scope="module")
def tenant(replica, django_db_blocker) -> Iterator[ReplicaTenant]:  # type: ignore[no-untyped-def]
    with django_db_blocker.unblock():
        created = tenant_create(
            slug="replicas",
            name="Replicas Inc",
            admin_email="admin@replicas.test",
            admin_password=PASSWORD,
        ).tenant
        with schema_context(created.schema_name):
            for slug in PROJECTS:  # one budget per project: the tests' writes
                Project.objects.create(slug=slug, name=slug)
        try:
            yield ReplicaTenant(
                tenant=created, host=tenant_domain("replicas"), admin_email="admin@replicas.test"
            )
        finally:
            connections["default"].set_schema_to_public()
            tenant_delete(tenant=created)


@pytest.fixture(autouse=True)
def _committed(django_db_blocker, settings) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """Database access without a test transaction; fresh health checks by default."""
    settings.REPLICA_HEALTH_CHECK_S = 0
    settings.REPLICA_MAX_LAG_S = 30
    db_routing.health_forget()
    with django_db_blocker.unblock():
        yield


@pytest.fixture
def primary() -> Iterator[psycopg.Connection]:
    name = connections["default"].settings_dict["NAME"]
    with psycopg.connect(host="127.0.0.1", dbname=name, user="postgres", autocommit=True) as db:
        yield db


@pytest.fixture
def paused(replica: StreamingReplica, primary: psycopg.Connection) -> Iterator[None]:
    """The replica has replayed everything so far, then replays nothing until the test ends."""
    replica_wait_replayed(replica, primary)
    with replica.connect("postgres") as db:
        db.execute("SELECT pg_wal_replay_pause()")
        try:
            yield
        finally:
            db.execute("SELECT pg_wal_replay_resume()")


def _budget_on_primary(tenant: ReplicaTenant, amount: int, project: str) -> None:
    with schema_context(tenant.schema):
        Budget.objects.create(project=project, amount=amount, thresholds=[100])


def _amounts(response) -> set[str]:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.content
    body = response.json()
    rows = body["results"] if isinstance(body, dict) else body
    return {row["amount"] for row in rows}


def _warm(client, key: str) -> None:  # type: ignore[no-untyped-def]
    """A key's first use records it (a write, at most once a minute): done before measuring."""
    assert client.get("/api/v1/budgets", **bearer(key)).status_code == 200


def test_the_routed_connection_is_the_replica_in_recovery(replica, tenant, primary):  # type: ignore[no-untyped-def]
    replica_wait_replayed(replica, primary)
    connections["default"].set_tenant(tenant.tenant)
    with reads_state(ReadState(eligible=True, schema=tenant.schema)) as state:
        assert read_alias() == ALIAS
        with read_connection().cursor() as cursor:
            cursor.execute("SELECT pg_is_in_recovery(), current_schema()")
            assert cursor.fetchone() == (True, tenant.schema)
        assert Budget.objects.all().db == ALIAS
        Budget.objects.create(project="direct", amount=5, thresholds=[100])  # on the primary
        assert state.wrote
        assert read_alias() == "default"
        assert Budget.objects.filter(amount=5).exists()  # read back from the primary
    with reads_state(ReadState(eligible=False, schema=tenant.schema)):
        assert read_alias() == "default"  # a POST, a task, a command


@pytest.mark.django_db
def test_reads_inside_a_transaction_stay_on_the_primary(replica, tenant):  # type: ignore[no-untyped-def]
    """A ``django_db`` test runs in a transaction: what it wrote is only on the primary."""
    connections["default"].set_tenant(tenant.tenant)
    with reads_state(ReadState(eligible=True, schema=tenant.schema)):
        assert connections["default"].in_atomic_block
        assert read_alias() == "default"


def test_a_page_and_the_read_api_read_from_the_replica(replica, tenant, primary):  # type: ignore[no-untyped-def]
    browser = logged_in_client(tenant.host, tenant.admin_email)
    client = host_client(tenant.host)
    _, reader = key_for(tenant, ["read"])
    _warm(client, reader)
    replica_wait_replayed(replica, primary)
    before = replica_reads()
    for path in ("/", "/runs/", "/budgets/"):  # raw SQL selectors and the ORM
        previous = replica_reads()
        assert browser.get(path).status_code == 200
        assert replica_reads() > previous, path
    page_reads = replica_reads() - before
    assert client.get("/api/v1/budgets", **bearer(reader)).status_code == 200
    assert replica_reads() - before > page_reads


def test_writes_go_to_the_primary(replica, tenant, primary, paused):  # type: ignore[no-untyped-def]
    client = host_client(tenant.host)
    _, manager = key_for(tenant, ["manage", "read"])
    created = client.post(
        "/api/v1/budgets",
        {"amount": "77", "thresholds": [100], "project": "written"},
        content_type="application/json",
        **bearer(manager),
    )
    assert created.status_code == 201, created.content
    sql = psycopg.sql.SQL("SELECT count(*) FROM {}.billing_budget WHERE amount = 77").format(
        psycopg.sql.Identifier(tenant.schema)
    )
    assert primary.execute(sql).fetchone() == (1,)
    with replica.connect(connections["default"].settings_dict["NAME"]) as db:
        assert db.execute(sql).fetchone() == (0,)  # replay is paused: not written there


def test_a_key_made_or_revoked_a_moment_ago_is_known_at_once(replica, tenant, paused):  # type: ignore[no-untyped-def]
    """Keys are looked up on the primary: the replica (paused) has not seen this one."""
    client = host_client(tenant.host)
    key, raw = key_for(tenant, ["read"])
    assert client.get("/api/v1/budgets", **bearer(raw)).status_code == 200
    with schema_context(tenant.schema):
        api_key_revoke(api_key=key)
    assert client.get("/api/v1/budgets", **bearer(raw)).status_code == 401


def test_a_client_that_wrote_reads_its_write_others_read_the_replica(  # type: ignore[no-untyped-def]
    replica, tenant, primary
):
    client = host_client(tenant.host)
    _, writer = key_for(tenant, ["manage", "read"])
    _, other = key_for(tenant, ["read"])
    _warm(client, writer)
    _warm(client, other)
    replica_wait_replayed(replica, primary)
    with replica.connect("postgres") as db:
        db.execute("SELECT pg_wal_replay_pause()")
        try:
            created = client.post(
                "/api/v1/budgets",
                {"amount": "31", "thresholds": [100], "project": "read-own"},
                content_type="application/json",
                **bearer(writer),
            )
            assert created.status_code == 201, created.content
            waited = fallbacks("read_your_writes")
            assert "31.00" in _amounts(client.get("/api/v1/budgets", **bearer(writer)))
            assert fallbacks("read_your_writes") == waited + 1
            before = replica_reads()
            assert "31.00" not in _amounts(client.get("/api/v1/budgets", **bearer(other)))
            assert replica_reads() > before
        finally:
            db.execute("SELECT pg_wal_replay_resume()")
    replica_wait_replayed(replica, primary)
    before = replica_reads()
    assert "31.00" in _amounts(client.get("/api/v1/budgets", **bearer(writer)))
    assert replica_reads() > before  # replayed: the writer reads the replica again


def test_a_lagging_replica_is_passed_over(replica, tenant, primary, settings):  # type: ignore[no-untyped-def]
    settings.REPLICA_MAX_LAG_S = 1
    client = host_client(tenant.host)
    _, reader = key_for(tenant, ["read"])
    _warm(client, reader)
    replica_wait_replayed(replica, primary)
    with replica.connect("postgres") as db:
        db.execute("SELECT pg_wal_replay_pause()")
        try:
            _budget_on_primary(tenant, 1234, "lagging")  # committed on the primary only
            time.sleep(1.5)
            lagging, before = fallbacks("lagging"), replica_reads()
            assert "1234.00" in _amounts(client.get("/api/v1/budgets", **bearer(reader)))
            assert fallbacks("lagging") == lagging + 1
            assert replica_reads() == before
        finally:
            db.execute("SELECT pg_wal_replay_resume()")


def test_a_replica_killed_mid_test_leaves_the_pages_up(replica, tenant, primary, settings):  # type: ignore[no-untyped-def]
    settings.REPLICA_HEALTH_CHECK_S = 60  # the replica is still taken as healthy when it dies
    browser = logged_in_client(tenant.host, tenant.admin_email)
    replica_wait_replayed(replica, primary)
    before = replica_reads()
    assert browser.get("/budgets/").status_code == 200
    assert replica_reads() > before
    replica.stop("immediate")
    errors, unreachable = fallbacks("error"), fallbacks("unreachable")
    assert browser.get("/budgets/").status_code == 200  # failed on the replica, answered again
    assert fallbacks("error") == errors + 1
    for _ in range(3):
        assert browser.get("/budgets/").status_code == 200
    assert fallbacks("unreachable") == unreachable + 3
