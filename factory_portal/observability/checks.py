"""System checks of the portal's own observability settings (``manage.py check --deploy``)."""

from __future__ import annotations

from typing import Any

from django.core import checks


@checks.register(checks.Tags.security, deploy=True)
def metrics_access_check(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """A deployment where no scraper can read ``/metrics`` is most likely a forgotten setting."""
    from factory_portal.observability.metrics import CLOSED_MESSAGE, metrics_closed

    if metrics_closed():
        return [checks.Warning(CLOSED_MESSAGE, id="observability.W001")]
    return []
