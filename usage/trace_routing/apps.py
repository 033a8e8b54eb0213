from django.apps import AppConfig


class TraceRoutingConfig(AppConfig):
    """Where OTLP spans go (public schema): which tenant and run a trace belongs to, and spans
    waiting for their trace's run span. Kept apart from ``usage`` because that app's tables live
    per tenant. The label is the database's name for the app, kept so that existing databases
    migrate unchanged."""

    name = "usage.trace_routing"
    label = "usage_platform"
    verbose_name = "Usage (trace routing)"
