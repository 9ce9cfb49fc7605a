"""Demo alerts for `make run`: what a small Python shop's monitoring sends on a bad afternoon."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

# One reference time per process, so a payload built twice is the same delivery (a retry).
_NOW = datetime.now(UTC).replace(microsecond=0)


def _iso(minutes_ago: float) -> str:
    return (_NOW - timedelta(minutes=minutes_ago)).isoformat().replace("+00:00", "Z")


PAYMENT_TRACEBACK = """Traceback (most recent call last):
  File "/srv/shop/.venv/lib/python3.11/site-packages/django/core/handlers/exception.py", line 55, in inner
    response = get_response(request)
  File "/srv/shop/.venv/lib/python3.11/site-packages/django/core/handlers/base.py", line 197, in _get_response
    response = wrapped_callback(request, *callback_args, **callback_kwargs)
  File "/srv/shop/shop/payments/views.py", line 48, in capture_payment
    receipt = charge_order(order, request.data)
  File "/srv/shop/shop/payments/service.py", line 112, in charge_order
    currency = payload["currency"]
KeyError: 'currency'"""

ANALYTICS_TRACEBACK = """Traceback (most recent call last):
  File "/srv/shop/shop/analytics/tasks.py", line 31, in nightly_conversion_report
    rate = conversion_rate(visits, orders)
  File "/srv/shop/shop/analytics/metrics.py", line 14, in conversion_rate
    return orders / visits
ZeroDivisionError: division by zero"""


def alertmanager_batch(status: str = "firing") -> dict:
    alerts = [
        {
            "status": status,
            "labels": {
                "alertname": "HighErrorRate",
                "service": "checkout",
                "severity": "critical",
                "env": "production",
                "instance": f"checkout-{n}:8000",
            },
            "annotations": {
                "summary": "checkout 5xx ratio above 5%",
                "description": f"checkout-{n} is answering 7.3% of requests with 5xx for 10 minutes.",
            },
            "startsAt": _iso(12),
            "endsAt": _iso(-5) if status == "resolved" else "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus.internal:9090/graph?g0.expr=job%3Arequest_errors%3Aratio5m",
            "fingerprint": f"c0ffee00000000{n}",
        }
        for n in (1, 2)
    ]
    if status == "firing":
        alerts.append(
            {
                "status": "firing",
                "labels": {"alertname": "Watchdog", "severity": "none", "prometheus": "monitoring/k8s"},
                "annotations": {"summary": "An alert that should always be firing to certify Alertmanager works."},
                "startsAt": _iso(600),
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus.internal:9090/graph?g0.expr=vector%281%29",
                "fingerprint": "e98b8c2b2a5a1f35",
            }
        )
        alerts.append(
            {
                "status": "firing",
                "labels": {
                    "alertname": "NodeFilesystemAlmostOutOfSpace",
                    "severity": "warning",
                    "instance": "db-1:9100",
                    "mountpoint": "/var/lib/postgresql",
                },
                "annotations": {"summary": "Filesystem on db-1 has 4.2% space left"},
                "startsAt": _iso(30),
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus.internal:9090/graph?g0.expr=node_filesystem_avail_bytes",
                "fingerprint": "a1b2c3d4e5f60718",
            }
        )
    return {
        "version": "4",
        "groupKey": '{}:{alertname="HighErrorRate"}',
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "quench",
        "groupLabels": {"alertname": "HighErrorRate"},
        "commonLabels": {"alertname": "HighErrorRate", "service": "checkout"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.internal:9093",
        "alerts": alerts,
    }


def grafana_alert() -> dict:
    return {
        "receiver": "quench",
        "status": "firing",
        "orgId": 1,
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "SlowSearchQueries", "service": "search", "grafana_folder": "Search"},
                "annotations": {"summary": "p99 search latency 2.4s (threshold 1s)"},
                "startsAt": _iso(8),
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://grafana.internal:3000/alerting/grafana/cdeqmlhvflz40f/view",
                "fingerprint": "57c6d9296de2ad39",
                "silenceURL": "http://grafana.internal:3000/alerting/silence/new",
                "dashboardURL": "",
                "panelURL": "",
                "values": {"B": 2.4, "C": 1},
                "valueString": "[ var='B' labels={service=search} value=2.4 ]",
            }
        ],
        "groupLabels": {"alertname": "SlowSearchQueries"},
        "commonLabels": {"alertname": "SlowSearchQueries", "service": "search"},
        "commonAnnotations": {},
        "externalURL": "http://grafana.internal:3000/",
        "version": "1",
        "groupKey": '{}:{alertname="SlowSearchQueries"}',
        "truncatedAlerts": 0,
        "title": "[FIRING:1] SlowSearchQueries (search)",
        "state": "alerting",
        "message": "**Firing**\n\nValue: B=2.4\nLabels:\n - alertname = SlowSearchQueries\n",
    }


def sentry_event(event_id: str) -> dict:
    return {
        "action": "triggered",
        "data": {
            "event": {
                "event_id": event_id,
                "project": 42,
                "title": "AttributeError: 'NoneType' object has no attribute 'email'",
                "culprit": "shop.accounts.views in profile",
                "level": "error",
                "platform": "python",
                "environment": "production",
                "timestamp": datetime.now(UTC).timestamp(),
                "tags": [["environment", "production"], ["service", "accounts"], ["release", "shop@2.14.0"]],
                "request": {"url": "https://shop.example.com/accounts/8812/profile?tab=orders", "method": "GET"},
                "exception": {
                    "values": [
                        {
                            "type": "AttributeError",
                            "value": "'NoneType' object has no attribute 'email'",
                            "module": "builtins",
                            "stacktrace": {
                                "frames": [
                                    {
                                        "filename": "django/core/handlers/base.py",
                                        "module": "django.core.handlers.base",
                                        "function": "_get_response",
                                        "lineno": 197,
                                        "in_app": False,
                                    },
                                    {
                                        "filename": "shop/accounts/views.py",
                                        "module": "shop.accounts.views",
                                        "function": "profile",
                                        "lineno": 73,
                                        "in_app": True,
                                        "context_line": "    contact = user.profile.email",
                                    },
                                ]
                            },
                        }
                    ]
                },
                "web_url": "https://sentry.example.com/organizations/shop/issues/4471/events/" + event_id + "/",
            },
            "triggered_rule": "Errors in production",
        },
        "installation": {"uuid": "7a485448-a9e2-4c85-8a3c-4f44175783c9"},
    }


def events_v2_trigger(token: str) -> dict:
    return {
        "routing_key": token,
        "event_action": "trigger",
        "dedup_key": "billing-cron-invoices-2026",
        "payload": {
            "summary": "Nightly invoice job failed: 3 retries exhausted",
            "source": "cron-1.internal",
            "severity": "error",
            "component": "billing",
            "group": "cron",
            "class": "job failure",
            "custom_details": {"service": "billing", "job": "send_invoices", "exit_code": 1},
        },
    }


REFUND_TRACEBACK = """Traceback (most recent call last):
  File "/srv/shop/.venv/lib/python3.11/site-packages/django/core/handlers/base.py", line 197, in _get_response
    response = wrapped_callback(request, *callback_args, **callback_kwargs)
  File "/srv/shop/shop/payments/views.py", line 91, in refund_payment
    refund = refund_order(order, request.data)
  File "/srv/shop/shop/payments/service.py", line 160, in refund_order
    amount = payload["amount"]
KeyError: 'amount'"""


def past_refund_crash(status: str = "firing") -> dict:
    """An earlier, already fixed crash of the same family: the new one should find it."""
    return {
        "service": "payments",
        "environment": "production",
        "title": "KeyError: 'amount'",
        "exception_type": "KeyError",
        "traceback": REFUND_TRACEBACK,
        "path": "/api/orders/9931/refund",
        "method": "POST",
        "severity": "error",
        "dedup_key": "demo-refund-keyerror",
        "status": status,
        "occurred_at": _iso(60 * 24 * 9 if status == "firing" else 60 * 24 * 8),
    }


def generic_events() -> list[dict]:
    return [
        {
            "service": "payments",
            "environment": "production",
            "title": "KeyError: 'currency'",
            "exception_type": "KeyError",
            "traceback": PAYMENT_TRACEBACK,
            "path": "/api/orders/10482/capture",
            "method": "POST",
            "severity": "error",
            "labels": {"region": "eu-west-1"},
        },
        {
            "service": "analytics",
            "environment": "production",
            "title": "ZeroDivisionError in nightly conversion report",
            "exception_type": "ZeroDivisionError",
            "traceback": ANALYTICS_TRACEBACK,
            "severity": "warning",
        },
    ]


def log_lines() -> list[dict]:
    """JSON-lines records a service writes; only errors and 5xx become signals."""
    return [
        {"level": "INFO", "message": "GET /api/catalog 200 in 31ms", "logger": "shop.request", "status": 200},
        {
            "level": "ERROR",
            "message": "Upstream inventory service timed out after 5.0s",
            "logger": "shop.inventory.client",
            "path": "/api/cart/551/items",
            "method": "POST",
            "status": 504,
        },
        {"level": "WARNING", "message": "Slow query: 812ms", "logger": "shop.db"},
        {
            "level": "ERROR",
            "message": "Upstream inventory service timed out after 7.5s",
            "logger": "shop.inventory.client",
            "path": "/api/cart/9911/items",
            "method": "POST",
            "status": 504,
        },
    ]
