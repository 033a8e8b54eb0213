from django.apps import AppConfig


class BillingPlatformConfig(AppConfig):
    """Billing data of the platform itself (public schema): the price book, later cost pools and
    allocation rules. Kept apart from ``billing`` because that app's tables live per tenant."""

    name = "billing.platform"
    label = "billing_platform"
    verbose_name = "Billing (platform)"
