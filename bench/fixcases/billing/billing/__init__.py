"""Billing: invoices and quotes for the sales tool, behind a small HTTP API."""
