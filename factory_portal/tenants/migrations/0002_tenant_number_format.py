from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("tenants", "0001_initial")]

    operations = [
        migrations.AddField(
            model_name="tenant",
            name="number_format",
            field=models.CharField(default="en", max_length=8),
        ),
    ]
