from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('alerts', '0004_alter_alert_kind'),
    ]

    operations = [
        migrations.AlterField(
            model_name='alert',
            name='kind',
            field=models.CharField(choices=[('budget', 'Budget'), ('run', 'Run'), ('anomaly', 'Cost anomaly'), ('failure_rate', 'Failure rate'), ('runtime', 'Runtime'), ('run_budget', 'Run over budget'), ('commitment', 'Prepaid commitment'), ('test', 'Test')], max_length=16),
        ),
    ]
