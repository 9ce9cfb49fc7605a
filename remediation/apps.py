from django.apps import AppConfig


class RemediationConfig(AppConfig):
    name = "remediation"
    verbose_name = "Remediation"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from incidents.signals import incident_needs_attention, incident_transitioned
        from remediation.approvals import supersede_on_transition
        from remediation.receivers import diagnose_when_needed

        incident_needs_attention.connect(diagnose_when_needed, dispatch_uid="remediation.diagnose")
        incident_transitioned.connect(supersede_on_transition, dispatch_uid="remediation.supersede")

        # The incident page: the diagnosis and proposal panel, the Reanalyze button and action.
        from incidents.admin import IncidentAdmin
        from remediation.admin import incident_reanalyze_urls, incident_remediation_panel, reanalyze_selected

        for extension, item in (
            (IncidentAdmin.page_panels, incident_remediation_panel),
            (IncidentAdmin.extra_urls, incident_reanalyze_urls),
            (IncidentAdmin.extra_actions, reanalyze_selected),
        ):
            if item not in extension:
                extension.append(item)

        from config.api.health import register_health_check
        from remediation.sandbox import sandbox_health, warn_if_unisolated

        # /healthz says "degraded" while fix attempts cannot run isolated; the log says so at start.
        register_health_check("sandbox", sandbox_health, critical=False)
        warn_if_unisolated()
