from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "factory_portal.accounts"
    label = "accounts"
    verbose_name = "Accounts"
