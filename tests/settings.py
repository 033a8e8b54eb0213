"""The test suite's settings: the site's own, with each pytest-xdist worker on Redis databases of
its own.

``bin/test`` runs the suite in parallel workers (``gw0``, ``gw1``, ...). pytest-django gives each
worker its own test database (``test_<name>_gw0``, ...); Redis needs the same, because the tests
flush the cache around every test and purge the Celery queue before a real worker starts. Worker
``n`` uses database ``15 - n`` of the Redis server ``REDIS_URL`` names (and of the broker and
result store, when ``CELERY_BROKER_URL`` or ``CELERY_RESULT_BACKEND`` name Redis servers of
their own), whatever database the URL names: never a developer's database 0, which the demo
uses. Run without xdist, nothing changes.
"""

from __future__ import annotations

import os
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

TOP_DATABASE = 15  # the highest of a default Redis server's 16 databases
REDIS_SCHEMES = ("redis", "rediss", "unix")


def _worker_redis_url(url: str, worker: str) -> str:
    """``url`` with database ``15 - n`` for worker ``gw<n>`` (a socket URL's ``db`` parameter,
    else the path; redis-py lets a ``db`` parameter win over the path, so it is dropped there)."""
    database = TOP_DATABASE - int(worker.removeprefix("gw"))
    if database < 1:
        raise RuntimeError(f"too many test workers for one Redis server ({worker})")
    parts = urlsplit(url)
    query = [(key, value) for key, value in parse_qsl(parts.query) if key != "db"]
    if parts.scheme == "unix":  # unix://[user:password@]/path/to/socket?db=N
        query.append(("db", str(database)))
        return f"unix://{parts.netloc}{parts.path}?{urlencode(query)}"
    return urlunsplit(parts._replace(path=f"/{database}", query=urlencode(query)))


_worker = os.environ.get("PYTEST_XDIST_WORKER")
if _worker and os.environ.get("TEST_REDIS_WORKER") != _worker:
    os.environ["REDIS_URL"] = _worker_redis_url(
        os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"), _worker
    )
    for _name in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"):
        _url = os.environ.get(_name, "")
        if _url.startswith(tuple(f"{scheme}://" for scheme in REDIS_SCHEMES)):
            os.environ[_name] = _worker_redis_url(_url, _worker)
        elif _url:
            raise RuntimeError(
                f"{_name}={_url.split(':')[0]}:… cannot be split between test workers"
            )
    # Processes the tests start (a Celery beat) inherit the worker's URLs as they are: they must
    # not move them again.
    os.environ["TEST_REDIS_WORKER"] = _worker

from factory_portal import settings as _site  # noqa: E402 (after the Redis URLs are chosen)

# Every name Django reads as a setting (upper case, ``_FAN_OUT_TASKS`` included, which a star
# import would leave out).
globals().update({name: value for name, value in vars(_site).items() if name.isupper()})
