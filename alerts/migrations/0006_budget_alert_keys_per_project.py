"""Budget alert keys of a project's budget take the form ``budget:project=<slug>:…`` (the slug
percent-encoded; ``alerts.services.evaluate.budget_alert_prefix``): the slug as it was made a
project named ``tenant`` share the tenant budget's keys. The keys of this tenant's earlier
project-budget alerts are rewritten, so thresholds already announced are not announced again.
Each alert's data names its project (``""``: the tenant's budget, whose keys stay)."""

import re
from urllib.parse import quote

from django.db import migrations

OLD = re.compile(r"^budget:(?P<scope>.*):(?P<rest>\d{4}-\d{2}:[a-z_]+:\d+)$")


def rewrite(apps, schema_editor):  # type: ignore[no-untyped-def]
    Alert = apps.get_model("alerts", "Alert")
    for alert in Alert.objects.filter(kind="budget", key__startswith="budget:").iterator():
        project = (alert.data or {}).get("project") or ""
        match = OLD.match(alert.key)
        if not project or match is None or match["scope"].startswith("project="):
            continue
        alert.key = f"budget:project={quote(project, safe='')}:{match['rest']}"
        alert.save(update_fields=["key"])


class Migration(migrations.Migration):
    dependencies = [("alerts", "0005_alert_kind_run_budget_commitment")]

    operations = [migrations.RunPython(rewrite, migrations.RunPython.noop)]
