"""The HTTP API: a route table and thin handlers over the domain modules.

The production server (gunicorn) turns each HTTP request into a `Request` and calls
`dispatch`; an exception escaping a handler becomes a 500 and an error report.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from shop import reports
from shop.analytics import shop_summary
from shop.customers import customer_email
from shop.money import format_amount
from shop.notifications import send_email
from shop.orders import find_order, order_total, orders_for_shop
from shop.payments import PaymentDeclined, charge
from shop.search import search_products, top_result
from shop.shops import find_shop


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


def pay_order(request: Request, order_id: int) -> Response:
    """POST /api/orders/<id>/pay: the checkout page or the app sends the order it shows the customer."""
    order = {**request.body, "id": order_id}
    try:
        receipt = charge(order)
    except PaymentDeclined as exc:
        return Response(402, {"error": str(exc)})
    return Response(201, {**asdict(receipt), "display_amount": receipt.display_amount})


def send_receipt(request: Request, order_id: int) -> Response:
    """POST /api/orders/<id>/receipt: e-mail the receipt again (support tool and "resend" button)."""
    order = find_order(order_id)
    if order is None:
        return Response(404, {"error": f"no order {order_id}"})
    email = customer_email(order["customer_id"])
    if email is None:
        return Response(409, {"error": f"the customer of order {order_id} no longer exists"})
    total = format_amount(order_total(order), order["currency"])
    message = send_email(email, f"Your receipt for order {order_id}", f"Total: {total}")
    return Response(202, {"to": message.to})


def search(request: Request) -> Response:
    """GET /api/search?q=...: products for the search box, with the best match first."""
    query = request.query.get("q", "").strip()
    if not query:
        return Response(400, {"error": "q is required"})
    results = search_products(query)
    return Response(200, {"query": query, "best_match": top_result(results), "results": results[:20]})


def dashboard(request: Request, shop_id: int) -> Response:
    """GET /api/shops/<id>/dashboard: the merchant's headline numbers."""
    shop = find_shop(shop_id)
    if shop is None:
        return Response(404, {"error": f"no shop {shop_id}"})
    summary = shop_summary(orders_for_shop(shop_id), visits=shop["visits_last_30_days"])
    return Response(200, {"shop": shop["name"], **summary})


def sales_report(request: Request) -> Response:
    """GET /api/reports/sales?days=N: revenue per day for the finance team."""
    try:
        days = int(request.query.get("days", "30"))
    except ValueError:
        return Response(400, {"error": "days must be a whole number"})
    return Response(200, {"days": days, "rows": reports.sales_by_day(days)})


def top_customers(request: Request) -> Response:
    """GET /api/reports/top-customers: customers with the most orders."""
    return Response(200, {"rows": reports.top_customers(limit=10)})


Handler = Callable[..., Response]
ROUTES: list[tuple[str, re.Pattern[str], Handler]] = [
    ("POST", re.compile(r"^/api/orders/(?P<order_id>\d+)/pay$"), pay_order),
    ("POST", re.compile(r"^/api/orders/(?P<order_id>\d+)/receipt$"), send_receipt),
    ("GET", re.compile(r"^/api/search$"), search),
    ("GET", re.compile(r"^/api/shops/(?P<shop_id>\d+)/dashboard$"), dashboard),
    ("GET", re.compile(r"^/api/reports/sales$"), sales_report),
    ("GET", re.compile(r"^/api/reports/top-customers$"), top_customers),
]


def dispatch(request: Request) -> Response:
    """Route a request to its handler; 404 for an unknown path, 405 for a known path with another method."""
    path_matched = False
    for method, pattern, handler in ROUTES:
        match = pattern.match(request.path)
        if match is None:
            continue
        path_matched = True
        if method == request.method.upper():
            return handler(request, **{name: int(value) for name, value in match.groupdict().items()})
    if path_matched:
        return Response(405, {"error": f"{request.method} is not allowed on {request.path}"})
    return Response(404, {"error": f"no route for {request.path}"})
