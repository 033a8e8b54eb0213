"""Saved views (a named analytics page with its query, private or shared with the tenant) and
scheduled e-mails of a saved view or of the monthly report (tenant schema). Sending goes through
the alerts outbox (``alerts.services.outbox``); this app builds only its own messages."""
