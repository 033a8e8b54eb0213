"""Django's Redis cache backend, with one ``redis.Redis`` client per connection pool.

Django's client builds a new ``redis.Redis`` around the pool for every cache operation, and
redis-py 5 and later fill the client's table of response callbacks in its constructor: about
45 µs each, several times a request (the API's throttle, cached summaries, sessions' lookups).
A client over a connection pool is safe to share between threads (each command takes a
connection from the pool), so one per pool does the same work without the constructions.
"""

from __future__ import annotations

from typing import Any

from django.core.cache.backends.redis import RedisCache, RedisCacheClient


class SharedClientRedisCacheClient(RedisCacheClient):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, Any] = {}  # id of a pool -> its client (pools live as long)

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        pool = self._get_connection_pool(write)  # type: ignore[attr-defined]  # not in the stubs
        client = self._clients.get(id(pool))
        if client is None:  # two threads may both build one: either is fine
            client = self._clients[id(pool)] = self._client(connection_pool=pool)  # type: ignore[attr-defined]
        return client


class SharedClientRedisCache(RedisCache):
    """``django.core.cache.backends.redis.RedisCache`` sharing its clients (see above)."""

    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = SharedClientRedisCacheClient
