from django.apps import AppConfig


class TenantsConfig(AppConfig):
    name = "factory_portal.tenants"
    label = "tenants"
    verbose_name = "Tenants"
