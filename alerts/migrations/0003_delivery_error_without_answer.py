"""Delivery logs used to keep the start of a failed webhook's answer ("HTTP 500: <body>"): keep
only "HTTP <code>", as new deliveries do, so no receiver's (or internal service's) text stays
readable there."""

from django.db import migrations
from django.db.models.functions import Left


def answers_forget(apps, schema_editor):
    Delivery = apps.get_model("alerts", "Delivery")
    Delivery.objects.filter(channel="webhook", last_error__regex=r"^HTTP [0-9]{3}: ").update(
        last_error=Left("last_error", len("HTTP 500"))
    )


class Migration(migrations.Migration):

    dependencies = [
        ("alerts", "0002_pending_run_evaluation"),
    ]

    operations = [
        migrations.RunPython(answers_forget, migrations.RunPython.noop, elidable=True),
    ]
