from django.apps import AppConfig


class KnowledgeConfig(AppConfig):
    name = "knowledge"
    verbose_name = "Knowledge"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from incidents.signals import incident_transitioned, postmortem_published
        from knowledge.receivers import write_postmortem_when_published, write_summary_when_resolved

        incident_transitioned.connect(write_summary_when_resolved, dispatch_uid="knowledge.summary_on_resolve")
        postmortem_published.connect(write_postmortem_when_published, dispatch_uid="knowledge.postmortem_published")

        # The watchdog raises an incident when knowledge writes pile up as dead letters.
        from incidents.watchdog import register_watchdog_check
        from knowledge.services import check_dead_letters

        register_watchdog_check("dead_letters", check_dead_letters, severity="P2")

        # The incident page's "Similar past incidents" panel.
        from incidents.admin import IncidentAdmin
        from knowledge.admin_panels import similar_incidents_panel

        if similar_incidents_panel not in IncidentAdmin.page_panels:
            IncidentAdmin.page_panels.append(similar_incidents_panel)
