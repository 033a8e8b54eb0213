"""The test suite's settings: the site's own, with each pytest-xdist worker on a Redis database of
its own.

``bin/test`` runs the suite in parallel workers (``gw0``, ``gw1``, ...). pytest-django gives each
worker its own test database (``test_<name>_gw0``, ...); Redis needs the same, because the tests
flush the cache around every test and purge the Celery queue before a real worker starts. Worker
``n`` uses database ``(d - n) mod 16`` of ``REDIS_URL``'s database ``d`` (``bin/test`` picks 15:
the workers take 15, 14, ...), so a developer's database 0 is never flushed by a second worker.
Run without xdist, nothing changes.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit, urlunsplit

_REDIS_DATABASES = 16  # a default Redis server's count


def _worker_redis_url(url: str, worker: str) -> str:
    parts = urlsplit(url)
    path = parts.path.strip("/")
    if not path.isdigit() and path:
        raise RuntimeError(f"REDIS_URL's path {parts.path!r} is not a database number")
    database = (int(path or 0) - int(worker.removeprefix("gw"))) % _REDIS_DATABASES
    return urlunsplit(parts._replace(path=f"/{database}"))


_worker = os.environ.get("PYTEST_XDIST_WORKER")
if _worker and os.environ.get("TEST_REDIS_WORKER") != _worker:
    os.environ["REDIS_URL"] = _worker_redis_url(
        os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"), _worker
    )
    # Processes the tests start (a Celery beat, the demo) inherit the worker's REDIS_URL as it
    # is: they must not move it again.
    os.environ["TEST_REDIS_WORKER"] = _worker

from factory_portal import settings as _site  # noqa: E402 (after REDIS_URL is chosen)

# Every name Django reads as a setting (upper case, ``_FAN_OUT_TASKS`` included, which a star
# import would leave out).
globals().update({name: value for name, value in vars(_site).items() if name.isupper()})
