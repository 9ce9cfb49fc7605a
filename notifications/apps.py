from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from incidents.signals import incident_opened, incident_transitioned
        from notifications import receivers
        from remediation import signals as remediation_signals

        incident_opened.connect(receivers.on_incident_opened, dispatch_uid="notifications.opened")
        incident_transitioned.connect(receivers.on_incident_transitioned, dispatch_uid="notifications.transitioned")
        for signal, receiver in (
            (remediation_signals.diagnosis_ready, receivers.on_diagnosis_ready),
            (remediation_signals.approval_requested, receivers.on_approval_requested),
            (remediation_signals.approval_expired, receivers.on_approval_expired),
            (remediation_signals.execution_started, receivers.on_execution_started),
            (remediation_signals.execution_failed, receivers.on_execution_failed),
            (remediation_signals.pull_request_opened, receivers.on_pull_request_opened),
        ):
            signal.connect(receiver, dispatch_uid=f"notifications.{receiver.__name__}")

        # The watchdog's notification conditions (see notifications/watchdog_checks.py).
        from notifications import watchdog_checks

        watchdog_checks.register()

        # The incident page lists what each channel was told about it.
        from incidents.admin import IncidentAdmin
        from notifications.admin import incident_notifications_panel

        if incident_notifications_panel not in IncidentAdmin.page_panels:
            IncidentAdmin.page_panels.append(incident_notifications_panel)
