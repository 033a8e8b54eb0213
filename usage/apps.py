from django.apps import AppConfig


class UsageConfig(AppConfig):
    name = "usage"
    verbose_name = "Usage"

    def ready(self) -> None:
        # Receivers: a tenant's change of time zone re-counts its rollups and run ledger.
        # A new tenant schema gets its event partitions for the months ahead.
        from usage.services import partitions, rollups  # noqa: F401
