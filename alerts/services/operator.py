"""Alerts for the operator (public schema): a provider's bill drifting from the portal's estimate.

The operator console has no inbox; the alert is the ``BilledDriftAlert`` row billing wrote (shown
on the operator's billed-vs-estimated page), and this module e-mails it to every active operator
after the row commits, and logs it (WARNING, logger ``alerts.services.operator``). A failed e-mail
is logged, never raised: the row stays, and the page shows it.
"""

from __future__ import annotations

import logging

from django.core.mail import send_mail
from django.db import transaction
from django_tenants.utils import get_public_schema_name, schema_context

from billing.operator.models import BilledDriftAlert
from factory_portal.accounts.models import Role, User
from factory_portal.money import usd
from factory_portal.periods import month_text

logger = logging.getLogger(__name__)


def drift_alert_text(alert: BilledDriftAlert) -> tuple[str, str]:
    """The subject and body of a drift alert."""
    share = "no estimate" if alert.percent is None else f"{alert.percent:+}%"
    subject = (
        f"AI bill drift {month_text(alert.period)}: {alert.provider}/{alert.model or '(no model)'}"
        f" {share}"
    )
    body = (
        f"{alert.provider} billed {usd(alert.billed)} for {alert.model or '(no model)'} in "
        f"{month_text(alert.period)} (UTC); the portal estimated {usd(alert.estimated)} "
        f"({share}, tolerance {alert.tolerance}%).\n"
        f"Details and true-up: /billed/{month_text(alert.period)}/\n"
    )
    return " ".join(subject.split()), body


def billed_drift_notify(*, alert_id: int) -> None:
    """Log the alert and e-mail it to the operators once the transaction that raised it commits."""
    transaction.on_commit(lambda: _send(alert_id))


def _send(alert_id: int) -> None:
    with schema_context(get_public_schema_name()):
        alert = BilledDriftAlert.objects.filter(pk=alert_id).first()
        if alert is None:
            return
        subject, body = drift_alert_text(alert)
        logger.warning("%s", subject)
        recipients = list(
            User.objects.filter(role=Role.OPERATOR, is_active=True).values_list("email", flat=True)
        )
    if not recipients:
        return
    try:
        send_mail(subject, body, None, recipients)
    except Exception:  # SMTP down: the alert row and the page still show it
        logger.warning("drift alert %s could not be e-mailed", alert_id, exc_info=True)
