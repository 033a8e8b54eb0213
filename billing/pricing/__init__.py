"""Token pricing, the one home of prices: the pure rules (``domain``: a call's cost from token
counts, the price schedule, contract overrides), the maintained catalogue read without a database
(``catalogue``), the price book's writes (``book``) and reads (``selectors``), tenants' contract
terms (``overrides``) and the cached pricer that ingest calls (``pricer``). Pages that list the
book for the operator read through ``billing.operator.selectors``."""
