"""What a person does to an incident: acknowledge it (once; PagerDuty routes that got the
trigger get an acknowledge event). The rule engine moves incidents between states; this module
never does."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction

from alerts.oncall.models import Incident, Page
from alerts.oncall.services.pages import pages_create


class IncidentResolved(ValueError):
    """The incident is resolved: there is nothing left to acknowledge."""


def incident_acknowledge(*, incident_id: int, by: str, now: datetime) -> tuple[Incident, bool]:
    """Acknowledge the incident as ``by`` (an e-mail, or an API key's name). The first
    acknowledgement counts: a second one changes nothing and returns ``(incident, False)`` with
    the first person and time. The acknowledgement and its outbox rows are one transaction, with
    the incident locked as the rule engine locks it. Raises ``Incident.DoesNotExist`` and, for a
    resolved incident nobody acknowledged, ``IncidentResolved``."""
    with transaction.atomic():
        incident = Incident.objects.select_for_update().get(pk=incident_id)
        if incident.acknowledged_at is not None:
            return incident, False
        if incident.state == Incident.State.RESOLVED:
            raise IncidentResolved(
                f"Alert {incident.pk} is resolved; there is nothing to acknowledge."
            )
        incident.acknowledged_at = now
        incident.acknowledged_by = by.strip()[:254]
        incident.save(update_fields=["acknowledged_at", "acknowledged_by"])
        pages_create(incident, Page.Event.ACKNOWLEDGE)
    return incident, True
