from django.apps import AppConfig


class KnowledgeConfig(AppConfig):
    name = "knowledge"
    verbose_name = "Knowledge"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from incidents.signals import incident_transitioned
        from knowledge.receivers import write_summary_when_resolved

        incident_transitioned.connect(write_summary_when_resolved, dispatch_uid="knowledge.summary_on_resolve")
