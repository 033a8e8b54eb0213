"""The Redis cache backend shares one client per connection pool (Django's builds one per
operation) and still works from many threads at once, against the real Redis."""

from __future__ import annotations

import threading
from decimal import Decimal

from django.core.cache import caches

from factory_portal.cache import SharedClientRedisCache


def test_one_client_per_pool_serves_every_thread():
    cache = caches["default"]
    assert isinstance(cache, SharedClientRedisCache)
    client = cache._cache.get_client(write=True)
    assert cache._cache.get_client(write=True) is client
    assert cache._cache.get_client() is client  # one server: reads use the same pool

    key = "test-shared-client"
    cache.set(key, {"cost": Decimal("1.10")}, 30)
    seen: list[object] = []
    errors: list[BaseException] = []

    def read() -> None:
        try:
            for n in range(50):
                seen.append(cache.get(key))
                cache.set(f"{key}-{threading.get_ident()}", n, 30)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    try:
        assert not errors, errors
        assert seen == [{"cost": Decimal("1.10")}] * 400
        assert {cache.get(f"{key}-{t.ident}") for t in threads} == {49}
    finally:
        cache.delete_many([key, *(f"{key}-{t.ident}" for t in threads)])
