"""Importing contacts from the CRM's CSV export."""

from __future__ import annotations

from dataclasses import dataclass


class InvalidContact(ValueError):
    """A row of the export that cannot become a contact (the import stops and reports it)."""


@dataclass(frozen=True)
class Contact:
    email: str
    name: str


def normalize(row: dict) -> Contact:
    """A contact from one row: the address trimmed and lower-cased, the name as given."""
    return Contact(row["email"].strip().lower(), row["name"].strip())


def import_contacts(rows: list[dict]) -> list[Contact]:
    """Every row as a contact, in order."""
    contacts = []
    for row in rows:
        contacts.append(normalize(row))
    return contacts
