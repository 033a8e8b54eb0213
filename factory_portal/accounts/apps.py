from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "factory_portal.accounts"
    label = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        from factory_portal.accounts import schema  # noqa: F401  (registers the OpenAPI scheme)
