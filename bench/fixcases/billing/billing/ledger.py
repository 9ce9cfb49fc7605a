"""The ledger: every invoice issued, in order. Production writes to PostgreSQL; here it is a list."""

from __future__ import annotations

from billing.invoices import Invoice

ISSUED: list[Invoice] = []


def record_invoice(invoice: Invoice) -> None:
    """Keep the invoice for the accounts team's exports."""
    ISSUED.append(invoice)
