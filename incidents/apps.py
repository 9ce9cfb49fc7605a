from django.apps import AppConfig


class IncidentsConfig(AppConfig):
    name = "incidents"
    verbose_name = "Incidents"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The project-wide API plumbing (config.api) knows no app: incidents adds its part.
        from config.api.exceptions import register_domain_error
        from config.api.health import register_health_check
        from config.api.metrics import register_metrics
        from incidents import metrics
        from incidents.health import scheduler_health
        from incidents.services.lifecycle import TransitionRefused
        from incidents.sources.base import PayloadError

        register_domain_error(PayloadError, lambda exc: (400, exc.message, exc.detail))
        register_domain_error(TransitionRefused, lambda exc: (409, exc.message, {"status": exc.current_status}))
        register_health_check("scheduler", scheduler_health)
        register_metrics("incidents", metrics.render)

        from incidents.postmortems import draft_when_resolved
        from incidents.signals import incident_transitioned

        # A long enough incident gets its postmortem drafted when it resolves.
        incident_transitioned.connect(draft_when_resolved, dispatch_uid="incidents.postmortem_on_resolve")

        from incidents import watchdog

        watchdog.register_builtin_checks()
