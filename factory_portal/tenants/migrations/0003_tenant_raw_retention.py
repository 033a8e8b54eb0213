import django.core.validators
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("tenants", "0002_tenant_number_format")]

    operations = [
        migrations.AddField(
            model_name="tenant",
            name="raw_retention_months",
            field=models.PositiveSmallIntegerField(
                default=13,
                validators=[
                    django.core.validators.MinValueValidator(1),
                    django.core.validators.MaxValueValidator(120),
                ],
            ),
        ),
        migrations.AddField(
            model_name="tenant",
            name="raw_retained_from",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddConstraint(
            model_name="tenant",
            constraint=models.CheckConstraint(
                condition=models.Q(raw_retention_months__gte=1, raw_retention_months__lte=120),
                name="tenant_raw_retention_range",
            ),
        ),
    ]
