"""The replica router's decisions, without a replica: the replica's health is given (as its last
check), the alias ``replica_0`` points at the test database. The behaviour against a real
streaming replica is in ``test_replicas_streaming.py``."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from django.core.cache import cache
from django.db import connections, router
from django.test import RequestFactory
from prometheus_client import REGISTRY

from factory_portal import db_routing
from factory_portal.db_routing import (
    ReadState,
    ReplicaHealth,
    ReplicaRouter,
    client_identities,
    read_alias,
    reads_state,
    remembered_write,
)

ALIAS = "replica_0"


@pytest.fixture
def replica(settings) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """``replica_0`` configured, last checked healthy and caught up (no check runs)."""
    settings.REPLICA_HEALTH_CHECK_S = 3600
    settings.REPLICA_MAX_LAG_S = 5
    connections.settings[ALIAS] = {
        **connections["default"].settings_dict,
        "TEST": {"MIRROR": "default"},
    }
    healthy(lag_s=0.0, replay_lsn=1000)
    try:
        yield ALIAS
    finally:
        db_routing.health_forget()
        connections[ALIAS].close()
        del connections[ALIAS]
        del connections.settings[ALIAS]


def healthy(*, lag_s: float, replay_lsn: int | None, up: bool = True) -> None:
    db_routing._health[ALIAS] = ReplicaHealth(
        up=up, lag_s=lag_s, replay_lsn=replay_lsn, checked=time.monotonic()
    )


def fallbacks(reason: str) -> float:
    return REGISTRY.get_sample_value("db_replica_fallbacks_total", {"reason": reason}) or 0.0


def page(**fields: object) -> ReadState:
    return ReadState(eligible=True, schema="alpha", **fields)  # type: ignore[arg-type]


def test_without_replicas_everything_reads_the_primary() -> None:
    assert db_routing.replica_aliases() == []
    with reads_state(page()):
        assert read_alias() == "default"


def test_a_page_read_goes_to_a_healthy_replica(replica: str) -> None:
    with reads_state(page()) as state:
        assert read_alias() == ALIAS
        assert router.db_for_read(object) == ALIAS  # type: ignore[arg-type]
        assert state.alias == ALIAS


def test_tasks_commands_and_writes_use_the_primary(replica: str) -> None:
    assert read_alias() == "default"  # no request: a Celery task or a management command
    with reads_state(ReadState(eligible=False, schema="alpha")):  # POST, PUT, PATCH, DELETE
        assert read_alias() == "default"
    with reads_state(page()) as state:
        assert router.db_for_write(object) == "default"  # type: ignore[arg-type]
        assert state.wrote
        assert read_alias() == "default"  # after a write, the request reads its own write


def test_a_lagging_or_unreachable_replica_falls_back_and_is_counted(replica: str) -> None:
    healthy(lag_s=6.0, replay_lsn=1000)
    lagging = fallbacks("lagging")
    with reads_state(page()):
        assert read_alias() == "default"
        assert read_alias() == "default"
    assert fallbacks("lagging") == lagging + 1  # once per request, not per query
    healthy(lag_s=math.inf, replay_lsn=None, up=False)
    unreachable = fallbacks("unreachable")
    with reads_state(page()):
        assert read_alias() == "default"
    assert fallbacks("unreachable") == unreachable + 1


def test_a_client_that_wrote_reads_the_replica_only_once_it_has_replayed(replica: str) -> None:
    cache.set("db:ryw:alpha:client-a", "0/3E8", timeout=10)  # 1000, the replica's position
    with reads_state(page(identities=("client-a",))):
        assert read_alias() == ALIAS
    cache.set("db:ryw:alpha:client-a", "0/3E9", timeout=10)  # one byte further
    assert remembered_write(page(identities=("client-a", "client-b"))) == 1001
    healthy(lag_s=0.0, replay_lsn=1001)
    with reads_state(page(identities=("client-a",))):
        assert read_alias() == ALIAS
    # the same client in another tenant, and another client, never wrote
    elsewhere = ReadState(eligible=True, schema="beta", identities=("client-a",))
    assert remembered_write(elsewhere) is None
    assert remembered_write(page(identities=("client-b",))) is None


def test_only_the_primary_is_migrated(replica: str) -> None:
    routing = ReplicaRouter()
    assert routing.allow_migrate(ALIAS, "usage") is False
    assert routing.allow_migrate("default", "usage") is None  # django-tenants decides
    assert router.allow_migrate(ALIAS, "usage") is False


def test_client_identities_are_the_key_and_the_session_hashed() -> None:
    factory = RequestFactory()
    keyed = factory.get("/", HTTP_AUTHORIZATION="Bearer fp_secret")
    signed_in = factory.get("/")
    signed_in.COOKIES["sessionid"] = "abc"
    (key,) = client_identities(keyed)
    (session,) = client_identities(signed_in)
    assert key != session and "fp_secret" not in key and len(key) == 32
    assert client_identities(factory.get("/")) == ()


def test_replica_urls_become_aliases_with_the_tenant_engine() -> None:
    env = {
        **os.environ,
        "DATABASE_REPLICA_URLS": "postgres://reader@10.0.0.5:5433/portal, postgres://r2@h2/portal",
    }
    code = (
        "import json, django; django.setup(); from django.conf import settings as s;"
        "print(json.dumps({a: [d['ENGINE'], d['HOST'], d['PORT'], d['USER'], d['TEST'],"
        " d['OPTIONS']] for a, d in s.DATABASES.items()}))"
    )
    done = subprocess.run(  # noqa: S603 - fixed arguments
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    databases = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(databases) == {"default", "replica_0", "replica_1"}
    engine, host, port, user, test, options = databases["replica_0"]
    assert engine == "django_tenants.postgresql_backend" == databases["default"][0]
    assert (host, port, user) == ("10.0.0.5", 5433, "reader")
    assert test["MIRROR"] == "default"  # the test runner creates no database for it
    assert options["options"] == "-c jit=off" and options["connect_timeout"] == 2
    assert databases["replica_1"][1:4] == ["h2", "", "r2"]
