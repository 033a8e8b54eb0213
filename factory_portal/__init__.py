"""Factory Portal: cost and usage analytics for AI software factories."""

from factory_portal.celery import app as celery_app

__all__ = ("celery_app",)
