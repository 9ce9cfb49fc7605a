from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("remediation", "0003_schedules"),
    ]

    operations = [
        migrations.AddField(
            model_name="service",
            name="type_check",
            field=models.CharField(
                choices=[("auto", "When the changed code has type hints"), ("on", "Always"), ("off", "Never")],
                default="auto",
                help_text=(
                    "Whether a fix must also pass the type checker on the files it changes (only new errors count). "
                    "Auto: when the repository configures a type checker or the changed files have type hints."
                ),
                max_length=10,
            ),
        ),
        migrations.AddField(
            model_name="service",
            name="type_check_command",
            field=models.CharField(
                blank=True,
                default="python -m mypy --ignore-missing-imports --follow-imports=silent --no-error-summary",
                help_text=(
                    "The type checker (mypy or pyright), run in the repository root without a shell; the changed "
                    "files are appended. Empty: no type check."
                ),
                max_length=500,
            ),
        ),
    ]
