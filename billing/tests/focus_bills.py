"""A small FOCUS 1.2 bill the operator's upload tests send: three charges of October 2026 (AWS
compute, GCP storage, an AWS credit)."""

FOCUS_HEADER = (
    "BilledCost,EffectiveCost,ListCost,BillingCurrency,BillingPeriodStart,"
    "BillingPeriodEnd,ChargeCategory,ServiceCategory,ProviderName,PricingCurrency,Tags\n"
)
FOCUS_ROWS = (
    "10.50,9.25,11,USD,2026-10-01T00:00:00Z,2026-11-01T00:00:00Z,Usage,Compute,AWS,USD,NULL\n"
    "4.125,4.125,4.125,USD,2026-10-01T00:00:00Z,2026-11-01T00:00:00Z,Usage,Storage,GCP,USD,NULL\n"
    "-1,-1,0,USD,2026-10-01T00:00:00Z,2026-11-01T00:00:00Z,Credit,Compute,AWS,USD,NULL\n"
)
