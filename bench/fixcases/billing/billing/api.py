"""The HTTP API: a route table and thin handlers (the WSGI adapter builds a `Request`, sends the `Response`).

A handler answers 400 for a request the domain refuses (`ValueError` and its subclasses
carry the reason); anything else that escapes `dispatch` is a 500 and an error report.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from billing.invoices import build_invoice
from billing.ledger import record_invoice
from billing.quotes import price_quote


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str] = field(default_factory=dict)
    body: dict = field(default_factory=dict)


@dataclass
class Response:
    status: int
    body: dict


def create_invoice(request: Request) -> Response:
    """POST /api/invoices: bill a customer for the lines the sales tool sends."""
    try:
        invoice = build_invoice(request.body)
    except ValueError as exc:
        return Response(400, {"error": str(exc)})
    record_invoice(invoice)
    return Response(201, asdict(invoice))


def quote(request: Request) -> Response:
    """POST /api/quotes: what a customer would pay for some items, with their negotiated discount."""
    try:
        quoted = price_quote(request.body)
    except ValueError as exc:
        return Response(400, {"error": str(exc)})
    return Response(200, quoted)


Handler = Callable[..., Response]
ROUTES: list[tuple[str, re.Pattern[str], Handler]] = [
    ("POST", re.compile(r"^/api/invoices$"), create_invoice),
    ("POST", re.compile(r"^/api/quotes$"), quote),
]


def dispatch(request: Request) -> Response:
    """Route a request to its handler; 404 for an unknown route."""
    for method, pattern, handler in ROUTES:
        match = pattern.match(request.path)
        if match is not None and method == request.method.upper():
            return handler(request, **match.groupdict())
    return Response(404, {"error": f"no route for {request.method} {request.path}"})
