from django.apps import AppConfig


class KnowledgeConfig(AppConfig):
    name = "knowledge"
    verbose_name = "Knowledge"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from incidents.signals import incident_transitioned
        from knowledge.receivers import write_summary_when_resolved

        incident_transitioned.connect(write_summary_when_resolved, dispatch_uid="knowledge.summary_on_resolve")

        # The incident page's "Similar past incidents" panel.
        from incidents.admin import IncidentAdmin
        from knowledge.admin_panels import similar_incidents_panel

        if similar_incidents_panel not in IncidentAdmin.page_panels:
            IncidentAdmin.page_panels.append(similar_incidents_panel)
