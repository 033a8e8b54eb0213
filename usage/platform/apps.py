from django.apps import AppConfig


class UsagePlatformConfig(AppConfig):
    """Usage bookkeeping of the platform itself (public schema): which tenant and run a trace
    belongs to, and spans waiting for their trace's run span. Kept apart from ``usage`` because
    that app's tables live per tenant."""

    name = "usage.platform"
    label = "usage_platform"
    verbose_name = "Usage (platform)"
