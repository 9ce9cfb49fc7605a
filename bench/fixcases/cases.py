"""The crash cases of the fix-quality benchmark (`bench/fixes.py`) and what "right" means for each.

Each case is a real crash of one of the small services in this folder: `call` is the
entry point's call with the input that breaks it (evaluated in the entry module's
namespace), `request` what an HTTP error reporter records of it (method and path; the
body is not recorded), and `expect` the outcome a right fix gives when the very same call
is replayed on the patched service:

- `Refuse("word")`: the input has no safe value, so it must be refused with a deliberate
  error that names it: a 4xx answer from an HTTP entry point, a domain error (a
  ValueError or the service's own error class) from a job;
- `Returns(value)`: the input is valid and must be served: the entry point returns
  `value` (for an HTTP response: its status and body).

Standard library only: `replay.py` imports this file inside the services' checkouts.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Refuse:
    """A deliberate refusal naming `mentions` (a 4xx answer, or a domain error from a job)."""

    mentions: str
    status: int | None = None  # the 4xx an HTTP entry point must answer (None: any 4xx)


@dataclass(frozen=True)
class Returns:
    """The result the entry point must return (for a response: {"status": ..., "body": ...})."""

    value: object


@dataclass(frozen=True)
class Case:
    name: str
    service: str  # folder under bench/fixcases
    module: str  # the entry point's module
    call: str  # the failing call, evaluated in that module's namespace
    exception: str  # what it raises before the fix
    expect: Refuse | Returns
    request: tuple[str, str] | None = None  # (method, path) as an HTTP error reporter records it
    summary: str = ""
    labels: dict[str, str] = field(default_factory=dict)


CASES: list[Case] = [
    # billing: an HTTP API; handlers answer 400 for a ValueError.
    Case(
        "invoice-line-without-price",
        "billing",
        "billing.api",
        "dispatch(Request('POST', '/api/invoices', body={'customer_id': 7, 'region': 'DE', "
        "'lines': [{'sku': 'A-1', 'quantity': 2}]}))",
        "KeyError",
        Refuse("unit_price_cents", status=400),
        request=("POST", "/api/invoices"),
        summary="An invoice line without a unit price: pricing it at 0 would bill nothing.",
    ),
    Case(
        "invoice-line-without-quantity",
        "billing",
        "billing.api",
        "dispatch(Request('POST', '/api/invoices', body={'customer_id': 7, 'region': 'NL', "
        "'lines': [{'sku': 'A-1', 'unit_price_cents': 1000}]}))",
        "KeyError",
        Returns(
            {
                "status": 201,
                "body": {
                    "customer_id": 7,
                    "region": "NL",
                    "subtotal_cents": 1000,
                    "vat_cents": 210,
                    "total_cents": 1210,
                },
            }
        ),
        request=("POST", "/api/invoices"),
        summary="A single item without a quantity: line_total documents that it defaults to 1.",
    ),
    Case(
        "invoice-unknown-region",
        "billing",
        "billing.api",
        "dispatch(Request('POST', '/api/invoices', body={'customer_id': 9, 'region': 'XX', "
        "'lines': [{'sku': 'A-1', 'unit_price_cents': 500, 'quantity': 1}]}))",
        "KeyError",
        Refuse("XX", status=400),
        request=("POST", "/api/invoices"),
        summary="A region without a VAT rate: no VAT at all would be a wrong invoice.",
    ),
    Case(
        "quote-without-contract",
        "billing",
        "billing.api",
        "dispatch(Request('POST', '/api/quotes', body={'customer_id': 9, "
        "'items': [{'unit_price_cents': 1500, 'quantity': 2}]}))",
        "AttributeError",
        Returns({"status": 200, "body": {"list_cents": 3000, "discount_percent": 0, "total_cents": 3000}}),
        request=("POST", "/api/quotes"),
        summary="A customer without a contract: customer_discount() promises None, price_quote() handles it.",
    ),
    # fulfilment: a queue worker; a ValueError sends the message to the dead-letter queue.
    Case(
        "ship-to-address-without-postcode",
        "fulfilment",
        "fulfilment.worker",
        "handle({'type': 'ship', 'payload': {'order_id': 41, 'address': {'name': 'Grace Hopper', "
        "'street': '1 Navy Yard', 'city': 'Arlington', 'delivery_instructions': ''}}})",
        "KeyError",
        Refuse("postcode"),
        summary="An address without a postcode: a label with a blank postcode ships nowhere.",
    ),
    Case(
        "label-without-instructions",
        "fulfilment",
        "fulfilment.worker",
        "handle({'type': 'ship', 'payload': {'order_id': 42, 'address': {'name': 'Alan Turing', "
        "'street': '2 Hampton Court', 'postcode': 'kt8 9au', 'city': 'East Molesey'}}})",
        "KeyError",
        Returns(
            {
                "job": "ship",
                "result": {
                    "order_id": 42,
                    "label": "ORDER 42 via DHL\nAlan Turing\n2 Hampton Court\nKT8 9AU East Molesey",
                },
            }
        ),
        summary='No delivery instructions: shipping_label documents that they default to "".',
    ),
    Case(
        "reserve-unknown-sku",
        "fulfilment",
        "fulfilment.worker",
        "handle({'type': 'reserve', 'payload': {'order_id': 43, 'lines': [{'sku': 'BOOT-9', 'quantity': 1}]}})",
        "AttributeError",
        Refuse("BOOT-9"),
        summary="A SKU the catalogue does not list: reserve() must not pretend it reserved it.",
    ),
    Case(
        "pack-into-zero-boxes",
        "fulfilment",
        "fulfilment.worker",
        "handle({'type': 'pack', 'payload': {'order_id': 44, 'boxes': 0, "
        "'items': [{'sku': 'STOVE-1', 'quantity': 3, 'weight_g': 900}]}})",
        "ZeroDivisionError",
        Refuse("boxes"),
        summary="An order packed into zero boxes: 0 items per box would ship empty boxes.",
    ),
    Case(
        "pack-an-empty-order",
        "fulfilment",
        "fulfilment.worker",
        "handle({'type': 'pack', 'payload': {'order_id': 45, 'boxes': 1, 'items': []}})",
        "IndexError",
        Refuse("items"),
        summary="An order without items: there is nothing to pack first.",
    ),
    # notify: scheduled jobs and the portal's inbox; an exception fails the job run.
    Case(
        "digest-for-user-without-preferences",
        "notify",
        "notify.digest",
        "plan_digests([1, 3])",
        "AttributeError",
        Returns({"daily": [1], "weekly": [3]}),
        summary="A user who never saved preferences gets the documented DEFAULT_FREQUENCY.",
    ),
    Case(
        "report-of-a-quiet-day",
        "notify",
        "notify.reports",
        "daily_report({'2024-05-01': {'sent': 0, 'delivered': 0}, '2024-05-02': {'sent': 4, 'delivered': 3}})",
        "ZeroDivisionError",
        Returns(["2024-05-01: 0 sent, n/a delivered", "2024-05-02: 4 sent, 75.0% delivered"]),
        summary="A day with nothing sent: delivery_rate() promises None, report_line() shows n/a.",
    ),
    Case(
        "import-row-without-email",
        "notify",
        "notify.jobs",
        "run_import({'id': 'b-7', 'rows': [{'email': 'ada@example.com', 'name': 'Ada'}, {'name': 'Grace'}]})",
        "KeyError",
        Refuse("email"),
        summary="A CRM row without an address: a contact without an e-mail address is no contact.",
    ),
    Case(
        "inbox-with-an-empty-thread",
        "notify",
        "notify.threads",
        "inbox([{'subject': 'Your order', 'messages': [{'text': 'Shipped'}]}, {'subject': 'Welcome', 'messages': []}])",
        "IndexError",
        Returns(["Your order: Shipped", "Welcome (no messages yet)"]),
        summary="A thread without messages: latest_message() promises None, preview() handles it.",
    ),
]
