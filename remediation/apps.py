from django.apps import AppConfig


class RemediationConfig(AppConfig):
    name = "remediation"
    verbose_name = "Remediation"
    default_auto_field = "django.db.models.BigAutoField"
