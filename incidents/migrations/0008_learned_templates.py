from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("incidents", "0007_sentry_dsn_and_ingest_window"),
    ]

    operations = [
        migrations.CreateModel(
            name="LearnedTemplates",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("service", models.CharField(blank=True, max_length=200, unique=True)),
                ("state", models.JSONField(blank=True, default=dict)),
                ("template_count", models.PositiveIntegerField(default=0)),
                ("variant_count", models.PositiveIntegerField(default=0)),
                ("updated_at", models.DateTimeField(auto_now=True)),
            ],
            options={
                "verbose_name_plural": "learned templates",
                "ordering": ["service"],
            },
        ),
    ]
