"""Read paths over one tenant's billing (the schema of the current connection): what pages, the
API, exports, alerts and the overview read. They return plain values and dataclasses; they never
write (writes are ``billing.services``).

- ``costs``: the month's cost report (token cost plus allocated infrastructure per project and
  run), exact to the cent; exports and the report API are built from it.
- ``summaries``: what the cost pages show of a cost report, kept ready in the cache.
- ``budgets``: each budget's status against actual and forecast spend.

The operator's cross-tenant reads are ``billing.operator.selectors``; price book reads are
``billing.pricing.selectors``.
"""
