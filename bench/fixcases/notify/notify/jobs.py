"""The scheduled jobs the cron runner calls with the job's arguments; an exception fails the run."""

from __future__ import annotations

from notify.contacts import import_contacts


def run_import(batch: dict) -> dict:
    """Import one batch of the CRM export; the result is logged by the runner."""
    contacts = import_contacts(batch["rows"])
    return {"batch": batch["id"], "imported": len(contacts)}
