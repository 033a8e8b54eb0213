from django.apps import AppConfig


class RuntimeConfig(AppConfig):
    """The factory's runtime half: OTLP metrics (queues, jobs, workers) as bounded, downsampled
    series, heartbeats, and the health and queue pages built on them.

    Both a shared and a tenant app: its tables exist in the public schema (platform-wide series,
    no tenant: the operator's) and in every tenant schema (that tenant's series only)."""

    name = "runtime"
    verbose_name = "Runtime"
