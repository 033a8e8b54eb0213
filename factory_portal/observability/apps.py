from django.apps import AppConfig


class ObservabilityConfig(AppConfig):
    name = "factory_portal.observability"
    label = "observability"
    verbose_name = "Observability"

    def ready(self) -> None:
        from factory_portal.observability import (  # noqa: F401 - connect hooks and checks
            celery_signals,
            checks,
        )
        from factory_portal.observability.tracing import tracing_configure

        tracing_configure()
