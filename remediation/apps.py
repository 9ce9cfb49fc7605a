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

        # Postmortems and analytics (incidents asks through its registries): the root cause and
        # what fixed it, the narrative writer, how incidents ended, approvals and fix attempts.
        from incidents import analytics, postmortems
        from remediation import reporting

        postmortems.register_fact_provider("remediation", reporting.postmortem_facts)
        postmortems.register_narrative_writer(reporting.write_postmortem_narrative)
        analytics.register_ending_classifier("remediation", reporting.incident_endings)
        analytics.register_figures("remediation", reporting.analytics_figures)

        # The watchdog's remediation conditions (see remediation/watchdog_checks.py).
        from remediation import watchdog_checks

        watchdog_checks.register()
