from django.apps import AppConfig


class UsageConfig(AppConfig):
    name = "usage"
    verbose_name = "Usage"

    def ready(self) -> None:
        # Receivers: a tenant's change of time zone re-counts its rollups and run ledger.
        from usage.services import rollups  # noqa: F401
