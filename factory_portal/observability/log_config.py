"""The logging configuration of every portal process (Django's ``LOGGING``, gunicorn's
``logconfig_dict``): one handler on stderr writing JSON lines, or plain lines for people.

Kept free of imports so that settings and the gunicorn configuration can load it early.
"""

from __future__ import annotations

from typing import Any

_PACKAGE = "factory_portal.observability.logging"


def logging_config(*, level: str = "INFO", fmt: str = "json") -> dict[str, Any]:
    formatter = "PlainFormatter" if fmt == "plain" else "JsonFormatter"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "context": {"()": f"{_PACKAGE}.ContextFilter"},
            "outage": {"()": f"{_PACKAGE}.OutageFilter"},
        },
        "formatters": {"portal": {"()": f"{_PACKAGE}.{formatter}"}},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "portal",
                "filters": ["context"],
            }
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "django.db.backends": {"level": "WARNING"},
            "django.request": {"level": level, "filters": ["outage"]},
            # Django's development server writes its own access lines; the portal writes one
            # per request already (logger ``portal.access``).
            "django.server": {"level": "WARNING"},
            # gunicorn's loggers write through the same handler instead of their own.
            "gunicorn.error": {"level": level, "handlers": [], "propagate": True},
            "gunicorn.access": {"level": "WARNING", "handlers": [], "propagate": True},
            # django-axes announces its version and settings at every process start; its
            # failures and lock-outs are warnings (logger ``axes.handlers.cache``).
            "axes.apps": {"level": "WARNING"},
        },
    }
