"""Database access: one small helper over the PostgreSQL client.

`SimulatedPostgres` stands in for the production server so that the service runs
anywhere: it answers the statements the service registers, and it knows how long each
takes on the production primary. A statement slower than the server's
`statement_timeout` is cancelled with PostgreSQL's own message, as it is in production.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

STATEMENT_TIMEOUT_MS = 30_000  # `ALTER ROLE shop SET statement_timeout = '30s'` on the primary

Rows = list[dict]


def normalize_sql(sql: str) -> str:
    """One spacing for a statement, so that the same SQL formatted differently is recognised."""
    return re.sub(r"\s+", " ", sql).strip()


@dataclass(frozen=True)
class Statement:
    """A statement the database knows: its result and its cost for given parameters."""

    rows: Callable[[tuple], Rows]
    duration_ms: Callable[[tuple], int]


class SimulatedPostgres:
    """The production database as the service sees it through its driver."""

    def __init__(self, statement_timeout_ms: int = STATEMENT_TIMEOUT_MS):
        self.statement_timeout_ms = statement_timeout_ms
        self.statements: dict[str, Statement] = {}
        self.executed: list[str] = []

    def register(self, sql: str, rows: Callable[[tuple], Rows], duration_ms: Callable[[tuple], int]) -> None:
        self.statements[normalize_sql(sql)] = Statement(rows, duration_ms)

    def execute(self, sql: str, params: tuple = (), *, timeout_ms: int | None = None) -> Rows:
        statement = self.statements.get(normalize_sql(sql))
        if statement is None:
            raise LookupError(f"relation or statement not known to the simulated database: {sql!r}")
        self.executed.append(normalize_sql(sql))
        limit = self.statement_timeout_ms if timeout_ms is None else min(timeout_ms, self.statement_timeout_ms)
        if statement.duration_ms(params) > limit:
            raise TimeoutError("canceling statement due to statement timeout")
        return statement.rows(params)


client = SimulatedPostgres()


def fetch_all(sql: str, params: tuple = ()) -> Rows:
    """All rows of a read-only statement."""
    return client.execute(sql, params)


def fetch_one(sql: str, params: tuple = ()) -> dict | None:
    """The first row of a read-only statement, or None."""
    rows = fetch_all(sql, params)
    return rows[0] if rows else None
