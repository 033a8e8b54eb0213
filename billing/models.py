"""Per-tenant billing tables (budgets, allocation results) arrive with the billing issue.

Platform-wide billing data (the price book) lives in ``billing.platform``, in the public schema.
"""
