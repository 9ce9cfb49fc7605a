from django.apps import AppConfig


class IncidentsConfig(AppConfig):
    name = "incidents"
    verbose_name = "Incidents"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from incidents.postmortems import draft_when_resolved
        from incidents.signals import incident_transitioned

        # A long enough incident gets its postmortem drafted when it resolves.
        incident_transitioned.connect(draft_when_resolved, dispatch_uid="incidents.postmortem_on_resolve")

        from incidents import watchdog

        watchdog.register_builtin_checks()
