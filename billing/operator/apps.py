from django.apps import AppConfig


class BillingOperatorConfig(AppConfig):
    """The operator's side of billing (public schema): the price book and contract terms, FOCUS
    imports and cost pools, allocation rules and runs, and the operator console's billing pages.
    Kept apart from ``billing`` because that app's tables live per tenant. The label is the
    database's name for the app, kept so that existing databases migrate unchanged."""

    name = "billing.operator"
    label = "billing_platform"
    verbose_name = "Billing (operator)"
