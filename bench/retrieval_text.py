"""Realistic knowledge text for the retrieval benchmark: incidents, postmortems, fixes, runbooks.

Every entry comes from one of a few dozen failure scenarios that Python services
really have (a KeyError in a payment handler, an exhausted connection pool, a full
disk, Redis timeouts, 5xx after a deploy, OOMKilled pods, ...), written the way an
on-call engineer or a postmortem template writes them, with the parts that vary in
real life varied: service, host, pod, region, exception message, identifiers, stack
frames, numbers, versions. Queries come from the same scenarios with fresh values
and in the shapes people type: a few keywords, an error line, a paraphrase.

    from bench.retrieval_text import generate_entries, generate_queries
    entries = generate_entries(100_000, seed=7)   # list[Entry]

Plain Python with a seeded `random.Random`: the same seed gives the same corpus.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable
from dataclasses import dataclass, field

SERVICES = [
    "payments",
    "checkout",
    "orders",
    "inventory",
    "search",
    "auth",
    "notifications",
    "billing",
    "shipping",
    "catalog",
    "recommendations",
    "api-gateway",
    "user-profile",
    "ledger",
    "reporting",
    "fraud-scoring",
    "pricing",
    "media-upload",
    "webhooks",
    "subscriptions",
]
REGIONS = ["eu-west-1", "eu-central-1", "us-east-1", "us-west-2", "ap-southeast-1"]
ENVIRONMENTS = ["production", "production", "production", "staging"]
TEAMS = ["payments-team", "platform", "sre", "growth", "core-api", "data-eng"]
PEOPLE = ["alice", "bob", "carol", "dmitri", "emeka", "farah", "giulia", "hiro", "ines", "jonas"]
DATABASES = ["orders-db", "payments-db", "users-pg", "ledger-primary", "catalog-replica", "analytics-pg"]
REDIS = ["redis-sessions", "redis-cache", "redis-ratelimit", "redis-queue"]
QUEUES = ["order-events", "payment-captured", "email-outbox", "search-reindex", "invoice-jobs"]
UPSTREAMS = ["stripe", "adyen", "paypal", "twilio", "sendgrid", "shippo", "taxjar", "maxmind"]
PAYLOAD_KEYS = [
    "customer_id",
    "amount",
    "currency",
    "payment_intent",
    "shipping_address",
    "sku",
    "order_id",
    "metadata",
    "card_last4",
    "tenant",
    "locale",
    "invoice_id",
]
MODULES = {
    "payments": ["payments/handlers/webhook.py", "payments/services/capture.py", "payments/adapters/stripe.py"],
    "checkout": ["checkout/views/cart.py", "checkout/services/totals.py", "checkout/tasks/confirm.py"],
    "orders": ["orders/api/views.py", "orders/services/fulfil.py", "orders/models.py"],
    "inventory": ["inventory/reservations.py", "inventory/sync/warehouse.py", "inventory/api/stock.py"],
    "search": ["search/indexer.py", "search/query/parser.py", "search/api/views.py"],
    "auth": ["auth/tokens.py", "auth/backends/oidc.py", "auth/middleware.py"],
    "notifications": ["notifications/senders/email.py", "notifications/templates.py", "notifications/tasks.py"],
    "billing": ["billing/invoices.py", "billing/proration.py", "billing/tasks/charge.py"],
    "shipping": ["shipping/rates.py", "shipping/labels.py", "shipping/carriers/ups.py"],
    "catalog": ["catalog/importers/csv.py", "catalog/api/products.py", "catalog/images.py"],
    "recommendations": ["recs/model/score.py", "recs/features.py", "recs/api.py"],
    "api-gateway": ["gateway/proxy.py", "gateway/ratelimit.py", "gateway/auth.py"],
    "user-profile": ["profiles/views.py", "profiles/serializers.py", "profiles/avatar.py"],
    "ledger": ["ledger/postings.py", "ledger/reconcile.py", "ledger/export.py"],
    "reporting": ["reporting/exports.py", "reporting/queries.py", "reporting/scheduler.py"],
    "fraud-scoring": ["fraud/rules.py", "fraud/model.py", "fraud/api.py"],
    "pricing": ["pricing/engine.py", "pricing/rules.py", "pricing/currency.py"],
    "media-upload": ["media/upload.py", "media/thumbnails.py", "media/storage.py"],
    "webhooks": ["webhooks/dispatch.py", "webhooks/signing.py", "webhooks/retry.py"],
    "subscriptions": ["subscriptions/renewals.py", "subscriptions/plans.py", "subscriptions/dunning.py"],
}
FUNCTIONS = [
    "handle",
    "process",
    "dispatch",
    "run",
    "execute",
    "capture_payment",
    "build_payload",
    "serialize",
    "apply_discount",
    "reserve_stock",
    "send",
    "render",
    "post",
    "get",
    "sync_batch",
    "refresh",
    "compute_totals",
    "validate",
]
# What each service talks about: function, class, table and route names are made from these.
DOMAIN = {
    "payments": ["charge", "refund", "capture", "payout", "dispute", "payment_intent", "settlement"],
    "checkout": ["cart", "basket", "coupon", "totals", "checkout_session", "tax_line", "promotion"],
    "orders": ["order", "fulfilment", "line_item", "backorder", "order_state", "return_request"],
    "inventory": ["stock_level", "reservation", "warehouse", "sku_batch", "replenishment", "bin_location"],
    "search": ["index", "shard", "query_plan", "synonym", "facet", "tokenizer", "reindex_job"],
    "auth": ["session", "token", "refresh_token", "oidc_client", "mfa_challenge", "login_attempt"],
    "notifications": ["email", "push_message", "sms", "template", "digest", "unsubscribe"],
    "billing": ["invoice", "credit_note", "proration", "usage_record", "dunning_step", "tax_rate"],
    "shipping": ["shipment", "label", "carrier_rate", "tracking_event", "parcel", "customs_form"],
    "catalog": ["product", "variant", "price_list", "image_asset", "category_tree", "attribute"],
    "recommendations": ["embedding", "feature_vector", "candidate_set", "model_version", "ranking"],
    "api-gateway": ["route_table", "upstream_pool", "api_key", "rate_bucket", "circuit", "jwt_claims"],
    "user-profile": ["profile", "avatar", "preference", "address_book", "consent", "locale_setting"],
    "ledger": ["posting", "journal_entry", "account_balance", "reconciliation", "fx_rate", "period_close"],
    "reporting": ["export", "report_run", "materialized_view", "schedule", "csv_chunk", "dashboard"],
    "fraud-scoring": ["risk_score", "rule_hit", "device_fingerprint", "velocity_check", "review_case"],
    "pricing": ["price_rule", "discount", "currency_table", "quote", "margin_floor", "bundle"],
    "media-upload": ["upload", "thumbnail", "transcode_job", "multipart_part", "storage_object"],
    "webhooks": ["delivery", "endpoint", "signature", "retry_schedule", "event_payload", "subscription"],
    "subscriptions": ["plan", "renewal", "trial", "seat_change", "cancellation", "grace_period"],
}
VERBS = ["load", "save", "sync", "build", "apply", "fetch", "create", "update", "resolve", "validate", "publish"]

HTTP_ROUTES = [
    "POST /api/v1/payments",
    "POST /webhooks/stripe",
    "GET /api/v1/orders/{id}",
    "POST /api/v1/checkout/confirm",
    "GET /api/v2/search",
    "PUT /api/v1/profile",
    "POST /api/v1/invoices",
    "GET /healthz",
    "POST /api/v1/cart/items",
    "GET /api/v1/products/{id}",
]


@dataclass
class Entry:
    """One knowledge entry as the benchmark loads it."""

    title: str
    body: str
    kind: str
    services: list[str]
    tags: list[str]
    scenario: str
    source_path: str = ""

    @property
    def text(self) -> str:
        return f"{self.title}\n\n{self.body}"


@dataclass
class Query:
    """One benchmark query and the scenario it is about (for sanity checks, not scoring)."""

    text: str
    scenario: str
    shape: str
    services: list[str] = field(default_factory=list)


class Vary:
    """The values that differ from one occurrence of a scenario to the next."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.service = rng.choice(SERVICES)
        self.region = rng.choice(REGIONS)
        self.env = rng.choice(ENVIRONMENTS)
        self.team = rng.choice(TEAMS)
        self.person = rng.choice(PEOPLE)
        self.db = rng.choice(DATABASES)
        self.redis = rng.choice(REDIS)
        self.queue = rng.choice(QUEUES)
        self.upstream = rng.choice(UPSTREAMS)
        self.key = rng.choice(PAYLOAD_KEYS)
        self.version = f"{rng.randint(1, 9)}.{rng.randint(0, 40)}.{rng.randint(0, 20)}"
        self.prev_version = f"{self.version.rsplit('.', 1)[0]}.{max(0, int(self.version.rsplit('.', 1)[1]) - 1)}"
        self.sha = "".join(rng.choices("0123456789abcdef", k=7))
        self.pod = f"{self.service}-{rng.randint(5, 9)}{''.join(rng.choices('bcdfghjklmnpqrstvwxz', k=3))}{rng.randint(100, 999)}-{''.join(rng.choices(string.ascii_lowercase + string.digits, k=5))}"
        self.host = f"ip-10-{rng.randint(0, 255)}-{rng.randint(0, 255)}-{rng.randint(1, 254)}"
        self.node = f"node-{rng.choice(['a', 'b', 'c'])}{rng.randint(1, 40):02d}"
        self.minutes = rng.choice([4, 7, 11, 14, 18, 23, 31, 42, 55, 67, 95, 140])
        self.percent = rng.choice([2, 3, 5, 8, 12, 17, 24, 35, 60, 90])
        self.count = rng.randint(40, 90000)
        self.pool = rng.choice([10, 20, 25, 40, 50, 100])
        self.ticket = f"{rng.choice(['INC', 'OPS', 'SRE', 'PAY'])}-{rng.randint(100, 9999)}"
        self.pr = rng.randint(1200, 9800)
        self.latency = rng.choice([450, 800, 1200, 2500, 5000, 9000, 30000])
        self.lineno = rng.randint(12, 880)
        module = rng.choice(MODULES[self.service])
        self.module = module
        self.noun = rng.choice(DOMAIN[self.service])
        self.function = rng.choice([rng.choice(FUNCTIONS), f"{rng.choice(VERBS)}_{self.noun}"])
        self.klass = "".join(part.title() for part in self.noun.split("_")) + rng.choice(
            ["Handler", "Service", "Serializer", "Repository", "Task", "Client", "View"]
        )
        self.table = f"{self.service.replace('-', '_')}_{self.noun}"
        self.route = rng.choice(
            [rng.choice(HTTP_ROUTES), f"{rng.choice(['GET', 'POST', 'PATCH'])} /api/v1/{self.noun.replace('_', '-')}s"]
        )
        self.request_id = "".join(rng.choices("0123456789abcdef", k=16))
        self.customer = f"cus_{''.join(rng.choices(string.ascii_letters + string.digits, k=14))}"
        self.order = rng.randint(10_000_000, 99_999_999)
        self.memory = rng.choice(["256Mi", "512Mi", "1Gi", "2Gi", "4Gi"])
        self.disk = rng.choice(["/var/lib/postgresql", "/var/log", "/data", "/tmp", "/srv/media"])

    def frames(self, depth: int | None = None) -> str:
        """A Python stack trace tail the way Sentry and logs show it."""
        rng = self.rng
        depth = depth or rng.randint(2, 4)
        framework = rng.choice(
            [
                ('django/core/handlers/base.py", line 197', "_get_response"),
                ('rest_framework/views.py", line 512', "dispatch"),
                ('celery/app/trace.py", line 451', "trace_task"),
                ('django_q/worker.py", line 97', "worker"),
                ('gunicorn/workers/sync.py", line 134', "handle"),
            ]
        )
        lines = [f'  File "/usr/local/lib/python3.12/site-packages/{framework[0]}, in {framework[1]}']
        modules = MODULES[self.service]
        for index in range(depth):
            module = modules[index % len(modules)] if index < depth - 1 else self.module
            function = rng.choice(FUNCTIONS) if index < depth - 1 else self.function
            lineno = rng.randint(10, 900) if index < depth - 1 else self.lineno
            if index == depth - 1 and rng.random() < 0.5:
                function = f"{self.klass}.{function}"
            lines.append(f'  File "/app/{module}", line {lineno}, in {function}')
        return "Traceback (most recent call last):\n" + "\n".join(lines)


@dataclass
class Scenario:
    """One failure family: how its pieces read in an incident, a postmortem, a fix, a runbook."""

    name: str
    tags: list[str]
    title: Callable[[Vary], str]
    error: Callable[[Vary], str]
    symptoms: Callable[[Vary], str]
    cause: Callable[[Vary], str]
    fix: Callable[[Vary], str]
    steps: list[str]
    paraphrase: Callable[[Vary], str]
    keywords: Callable[[Vary], str]


def _pick(v: Vary, *options: str) -> str:
    return v.rng.choice(options)


SCENARIOS: list[Scenario] = [
    Scenario(
        "keyerror-payload",
        ["python", "exception", "payload"],
        lambda v: _pick(
            v,
            f"KeyError: '{v.key}' in {v.service} {v.function}",
            f"KeyError '{v.key}' raised by {v.module.rsplit('/', 1)[-1]} in {v.service}",
            f"{v.service}: webhook handler crashes with KeyError '{v.key}'",
        ),
        lambda v: f"{v.frames()}\nKeyError: '{v.key}'",
        lambda v: (
            f"Requests to {v.route} on {v.service} started failing with HTTP 500 at a rate of {v.percent}% after {v.upstream} began sending events without the `{v.key}` field. Sentry grouped {v.count} events under one issue."
        ),
        lambda v: (
            f"The handler indexed the payload with `payload['{v.key}']` and assumed {v.upstream} always sends it; their API version change made the field optional for some event types."
        ),
        lambda v: (
            f"Read the field with `payload.get('{v.key}')`, skip events that do not carry it, and add a contract test with a payload that lacks `{v.key}` (PR #{v.pr})."
        ),
        [
            "Open the Sentry issue and note which event types lack the key",
            "Check the upstream changelog for a recent API version change",
            "Pin the webhook API version in the provider dashboard if possible",
            "Deploy the tolerant parser and replay the failed events from the dead-letter queue",
        ],
        lambda v: (
            f"{v.service} falls over when a partner's callback body is missing one of the fields we expected; the lookup of that field blows up"
        ),
        lambda v: f"KeyError {v.key} {v.service} webhook",
    ),
    Scenario(
        "db-pool-exhausted",
        ["database", "postgres", "connection-pool"],
        lambda v: _pick(
            v,
            f"Database connection pool exhausted on {v.service}",
            f"QueuePool limit of size {v.pool} overflow 10 reached ({v.service})",
            f"{v.service}: too many connections to {v.db}",
        ),
        lambda v: _pick(
            v,
            f"{v.frames()}\nsqlalchemy.exc.TimeoutError: QueuePool limit of size {v.pool} overflow 10 reached, connection timed out, timeout 30.00 (Background on this error at: https://sqlalche.me/e/20/3o7r)",
            f'{v.frames()}\npsycopg.OperationalError: connection failed: FATAL:  remaining connection slots are reserved for roles with the SUPERUSER attribute (host "{v.db}")',
            f'{v.frames()}\ndjango.db.utils.OperationalError: FATAL:  sorry, too many clients already (database "{v.db}")',
        ),
        lambda v: (
            f"p99 latency of {v.service} rose to {v.latency} ms and {v.percent}% of requests failed while waiting for a database connection. {v.db} showed {v.pool * 4} active connections, most of them idle in transaction."
        ),
        lambda v: (
            f"A long-running report query held connections idle in transaction; with {v.pool} connections per worker and autoscaling to 12 pods the pool limit on {v.db} was reached."
        ),
        lambda v: (
            f"Set idle_in_transaction_session_timeout to 60s on {v.db}, put PgBouncer in transaction mode in front of it and lower the per-pod pool to {max(5, v.pool // 2)}."
        ),
        [
            "Check pg_stat_activity for sessions idle in transaction and their query",
            "Terminate the oldest idle-in-transaction sessions with pg_terminate_backend",
            "Scale the service down if pods exceed the connection budget",
            "Verify PgBouncer pool usage with SHOW POOLS",
        ],
        lambda v: (
            f"{v.service} requests hang and then error because every database handle is already taken; nothing is free to serve new work"
        ),
        lambda v: f"connection pool exhausted {v.db}",
    ),
    Scenario(
        "disk-full",
        ["disk", "storage", "infrastructure"],
        lambda v: _pick(
            v,
            f"Disk full on {v.host}: {v.disk} at 100%",
            f"No space left on device writing to {v.disk} ({v.service})",
            f"{v.service} pods failing: OSError [Errno 28] No space left on device",
        ),
        lambda v: (
            f"{v.frames(2)}\nOSError: [Errno 28] No space left on device: '{v.disk}/{v.service}/tmp-{v.request_id[:8]}'"
        ),
        lambda v: (
            f"Node exporter alert NodeFilesystemAlmostOutOfSpace fired for {v.disk} on {v.host}; writes from {v.service} failed and the {v.env} deployment stopped accepting uploads for {v.minutes} minutes."
        ),
        lambda v: (
            f"Log rotation was disabled by a config change, and debug logging left on after an investigation filled {v.disk} with {v.count // 10} MB per hour."
        ),
        lambda v: (
            f"Re-enabled logrotate with compression, turned debug logging off, and added an alert at 80% usage; cleaned up {v.disk} with `journalctl --vacuum-size=500M`."
        ),
        [
            "Find the largest directories with `du -xh --max-depth=2 | sort -h`",
            "Delete rotated logs and core dumps older than 7 days",
            "Check for deleted files still held open with `lsof +L1` and restart the holder",
            "Extend the volume if usage growth is legitimate",
        ],
        lambda v: f"the machine ran out of room to store files so {v.service} could not write anything any more",
        lambda v: f"no space left on device {v.disk}",
    ),
    Scenario(
        "redis-timeout",
        ["redis", "cache", "latency"],
        lambda v: _pick(
            v,
            f"Redis timeouts from {v.service} to {v.redis}",
            f"redis.exceptions.TimeoutError: Timeout reading from {v.redis}:6379",
            f"{v.service} latency spike: Redis commands timing out",
        ),
        lambda v: (
            f"{v.frames()}\nredis.exceptions.TimeoutError: Timeout reading from {v.redis}.{v.region}.cache.internal:6379"
        ),
        lambda v: (
            f"{v.service} p99 went from 40 ms to {v.latency} ms; {v.percent}% of requests that read the session cache timed out. {v.redis} CPU was at 100% on one core."
        ),
        lambda v: (
            f"A new code path ran `KEYS session:*` on every request from {v.service}, blocking the single-threaded Redis for tens of milliseconds at a time."
        ),
        lambda v: (
            f"Replaced KEYS with SCAN in a background job, set socket_timeout=0.5 and a circuit breaker around cache reads (PR #{v.pr})."
        ),
        [
            "Run SLOWLOG GET 20 on the Redis primary",
            "Check INFO commandstats for KEYS, SMEMBERS or large HGETALL calls",
            "Look at connected_clients and blocked_clients",
            "Fail over to the replica if the primary is unresponsive",
        ],
        lambda v: f"reads from the in-memory cache behind {v.service} got very slow and gave up waiting",
        lambda v: f"redis timeout {v.redis}",
    ),
    Scenario(
        "5xx-after-deploy",
        ["deploy", "regression", "http-5xx"],
        lambda v: _pick(
            v,
            f"5xx rate above 5% on {v.service} after deploy {v.version}",
            f"{v.service} {v.version}: HTTP 500 errors spiked right after release",
            f"Error rate regression after deploying {v.service}@{v.sha}",
        ),
        lambda v: (
            f"{v.frames()}\nAttributeError: 'NoneType' object has no attribute '{_pick(v, 'id', 'total', 'currency', 'items', 'user')}'"
        ),
        lambda v: (
            f"Within {v.minutes % 10 + 2} minutes of rolling out {v.service} {v.version} (commit {v.sha}) the 5xx ratio on {v.route} rose to {v.percent}% in {v.region}. The previous version {v.prev_version} had 0.1%."
        ),
        lambda v: (
            f"Commit {v.sha} changed a serializer so that anonymous requests reach code that assumes a logged-in user; no test covered the anonymous path."
        ),
        lambda v: (
            f"Rolled back to {v.prev_version} with `kubectl rollout undo deployment/{v.service}`, then fixed the None check and added a test for anonymous requests (PR #{v.pr})."
        ),
        [
            "Compare error rate before and after the deploy marker in Grafana",
            "Roll back with kubectl rollout undo if the regression is confirmed",
            "Diff the release against the previous tag",
            "Reproduce with the failing request from the Sentry event",
        ],
        lambda v: (
            f"right after we shipped the new build of {v.service}, lots of requests started returning server errors"
        ),
        lambda v: f"500 errors after deploy {v.service}",
    ),
    Scenario(
        "oomkilled",
        ["kubernetes", "memory", "oom"],
        lambda v: _pick(
            v,
            f"{v.pod} OOMKilled (limit {v.memory})",
            f"{v.service} pods restarting: OOMKilled, exit code 137",
            f"Memory limit exceeded for {v.service} workers",
        ),
        lambda v: (
            f"Last State: Terminated\n  Reason: OOMKilled\n  Exit Code: 137\nContainer {v.service} in pod {v.pod} on {v.node} exceeded its memory limit of {v.memory}."
        ),
        lambda v: (
            f"KubePodCrashLooping fired for {v.pod}; {v.service} restarted {v.count % 60 + 3} times in an hour and the queue {v.queue} backed up to {v.count} messages."
        ),
        lambda v: (
            f"A batch export loaded a whole result set into memory with `list(queryset)`; for large tenants this needed about three times the {v.memory} limit."
        ),
        lambda v: (
            f"Stream the export with `.iterator(chunk_size=2000)`, raise the limit to {v.memory} plus headroom only for the worker deployment, and add a memory profile test."
        ),
        [
            "kubectl describe pod to confirm Reason: OOMKilled and the limit",
            "Check container_memory_working_set_bytes in Grafana for the growth pattern",
            "Look for unbounded queries or caches in the code path",
            "Raise the limit temporarily if the service is down",
        ],
        lambda v: (
            f"the {v.service} containers keep getting killed by the orchestrator because they use more RAM than allowed"
        ),
        lambda v: f"OOMKilled {v.service} exit 137",
    ),
    Scenario(
        "tls-expired",
        ["tls", "certificate", "security"],
        lambda v: _pick(
            v,
            f"TLS certificate expired for {v.service}.example.com",
            f"SSL: CERTIFICATE_VERIFY_FAILED calling {v.upstream} from {v.service}",
            f"{v.service}: x509 certificate has expired",
        ),
        lambda v: (
            f"{v.frames()}\nssl.SSLCertVerificationError: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: certificate has expired (_ssl.c:1006)"
        ),
        lambda v: (
            f"All HTTPS calls from {v.service} to {v.upstream} failed for {v.minutes} minutes; browsers showed NET::ERR_CERT_DATE_INVALID for {v.service}.example.com."
        ),
        lambda v: (
            "cert-manager could not renew the certificate because the ACME HTTP-01 challenge path was blocked by a new ingress rule."
        ),
        lambda v: (
            "Allowed /.well-known/acme-challenge/ through the ingress, forced renewal with `cmctl renew`, and added an alert for certificates expiring within 14 days."
        ),
        [
            "Check expiry with `openssl s_client -connect host:443 | openssl x509 -noout -dates`",
            "Look at cert-manager Certificate and CertificateRequest status",
            "Renew manually if automation is broken",
        ],
        lambda v: (
            f"secure connections to {v.service} stopped working because the site's security credential ran past its validity date"
        ),
        lambda v: "certificate expired CERTIFICATE_VERIFY_FAILED",
    ),
    Scenario(
        "dns-failure",
        ["dns", "network"],
        lambda v: _pick(
            v,
            f"DNS resolution failures in {v.region}",
            f"{v.service}: Temporary failure in name resolution for {v.db}",
            f"socket.gaierror from {v.service} resolving {v.upstream} API",
        ),
        lambda v: f"{v.frames()}\nsocket.gaierror: [Errno -3] Temporary failure in name resolution",
        lambda v: (
            f"{v.percent}% of outbound calls from {v.service} failed with name resolution errors; CoreDNS pods in {v.region} were at their CPU limit."
        ),
        lambda v: (
            "ndots:5 in the pod resolv.conf made every external lookup try five search domains first, multiplying DNS queries by six during a traffic spike."
        ),
        lambda v: (
            "Set ndots:2 in the deployment dnsConfig, enabled NodeLocal DNSCache and scaled CoreDNS horizontally."
        ),
        [
            "Check CoreDNS logs and CPU usage",
            "Resolve the name from inside a pod with `dig` and `getent hosts`",
            "Look at conntrack table usage on the nodes",
        ],
        lambda v: f"{v.service} could not turn hostnames into addresses so it could not reach its dependencies",
        lambda v: "temporary failure in name resolution gaierror",
    ),
    Scenario(
        "kafka-lag",
        ["kafka", "queue", "consumer-lag"],
        lambda v: _pick(
            v,
            f"Kafka consumer lag on {v.queue} above {v.count}",
            f"{v.service} consumer group falling behind on topic {v.queue}",
            f"Events on {v.queue} delayed by {v.minutes} minutes",
        ),
        lambda v: (
            f"kafka.errors.CommitFailedError: Commit cannot be completed since the group has already rebalanced and assigned the partitions to another member (group {v.service}-consumers, topic {v.queue})"
        ),
        lambda v: (
            f"Lag on {v.queue} grew to {v.count} messages; {v.service} consumers kept rebalancing every few minutes and downstream emails were {v.minutes} minutes late."
        ),
        lambda v: (
            f"Processing one batch took longer than max.poll.interval.ms because of a slow call to {v.upstream}, so the broker evicted consumers and the group rebalanced in a loop."
        ),
        lambda v: (
            f"Lowered max.poll.records to 50, moved the {v.upstream} call to an async task with a timeout, and enabled cooperative-sticky rebalancing."
        ),
        [
            "Check consumer group lag with kafka-consumer-groups --describe",
            "Look for rebalance loops in consumer logs",
            "Compare batch processing time with max.poll.interval.ms",
        ],
        lambda v: f"the workers reading the {v.queue} stream can't keep up and keep getting kicked out of their group",
        lambda v: f"consumer lag {v.queue} rebalance",
    ),
    Scenario(
        "deadlock",
        ["database", "postgres", "locking"],
        lambda v: _pick(
            v,
            f"deadlock detected in {v.service} updating {v.db}",
            f"{v.service}: psycopg.errors.DeadlockDetected on order update",
            f"Lock timeouts and deadlocks on {v.db}",
        ),
        lambda v: (
            f"{v.frames()}\npsycopg.errors.DeadlockDetected: deadlock detected\nDETAIL:  Process {v.count} waits for ShareLock on transaction {v.order}; blocked by process {v.count + 17}.\nHINT:  See server log for query details."
        ),
        lambda v: (
            f"{v.count % 500 + 20} transactions failed with deadlock detected on {v.db} over {v.minutes} minutes; retries in {v.service} amplified the load."
        ),
        lambda v: (
            f"Two code paths in {v.service} updated the same order and inventory rows in opposite order, so concurrent requests locked each other."
        ),
        lambda v: (
            "Lock rows in a consistent order (by primary key) with select_for_update(), and retry a deadlocked transaction once with jitter."
        ),
        [
            "Read the deadlock report in the PostgreSQL log",
            "Check pg_locks joined with pg_stat_activity for blockers",
            "Identify the two statements and their lock order",
        ],
        lambda v: (
            f"two concurrent writers in {v.service} kept waiting on each other forever until the database aborted one"
        ),
        lambda v: f"deadlock detected {v.db}",
    ),
    Scenario(
        "rate-limited",
        ["upstream", "rate-limit", "http-429"],
        lambda v: _pick(
            v,
            f"{v.upstream} API returning 429 Too Many Requests to {v.service}",
            f"Rate limited by {v.upstream}: {v.service} calls failing",
            f"HTTP 429 from {v.upstream} during batch sync",
        ),
        lambda v: (
            f"{v.frames()}\nhttpx.HTTPStatusError: Client error '429 Too Many Requests' for url 'https://api.{v.upstream}.com/v1/{_pick(v, 'charges', 'messages', 'rates', 'customers')}'"
        ),
        lambda v: (
            f"{v.percent}% of calls from {v.service} to {v.upstream} were rejected with 429 for {v.minutes} minutes; retries without backoff made it worse."
        ),
        lambda v: f"A nightly backfill job sent {v.count} requests in a burst, using the same API key as live traffic.",
        lambda v: (
            "Added exponential backoff honouring Retry-After, a token-bucket limiter per API key, and moved the backfill to its own key."
        ),
        [
            "Check the Retry-After header on failed responses",
            "Find which job or tenant is sending the burst",
            "Pause batch jobs sharing the API key",
        ],
        lambda v: f"the external provider {v.upstream} is throttling us because {v.service} sends too much traffic",
        lambda v: f"429 too many requests {v.upstream}",
    ),
    Scenario(
        "json-decode",
        ["upstream", "parsing", "python"],
        lambda v: _pick(
            v,
            f"JSONDecodeError parsing {v.upstream} response in {v.service}",
            f"{v.service}: Expecting value: line 1 column 1 (char 0)",
            f"Upstream {v.upstream} returned HTML instead of JSON",
        ),
        lambda v: f"{v.frames()}\njson.decoder.JSONDecodeError: Expecting value: line 1 column 1 (char 0)",
        lambda v: (
            f"{v.service} failed to parse responses from {v.upstream} for {v.minutes} minutes; the body started with `<!DOCTYPE html>` and a 502 maintenance page."
        ),
        lambda v: (
            f"{v.upstream} served a maintenance page with status 200 through their CDN, and our client parsed the body without checking Content-Type."
        ),
        lambda v: (
            "Check status and Content-Type before decoding, treat non-JSON bodies as a retryable upstream error, and log the first 200 bytes."
        ),
        [
            "Capture a raw response with curl -i",
            "Check the upstream status page",
            "Verify the client checks Content-Type",
        ],
        lambda v: (
            f"the reply from {v.upstream} was not machine-readable data but a web page, so {v.service} choked reading it"
        ),
        lambda v: f"JSONDecodeError {v.upstream} Expecting value",
    ),
    Scenario(
        "missing-column",
        ["database", "migration", "deploy"],
        lambda v: _pick(
            v,
            f"column does not exist after migration in {v.service}",
            f"{v.service} {v.version}: ProgrammingError column {v.key} does not exist",
            f"Schema mismatch between {v.service} code and {v.db}",
        ),
        lambda v: (
            f'{v.frames()}\ndjango.db.utils.ProgrammingError: column "{v.key}" of relation "{v.service.replace("-", "_")}_record" does not exist\nLINE 1: SELECT "{v.service.replace("-", "_")}_record"."{v.key}" FROM ...'
        ),
        lambda v: (
            f"The new pods of {v.service} {v.version} started before the migration job finished; {v.percent}% of requests failed for {v.minutes % 10 + 1} minutes."
        ),
        lambda v: (
            "The deployment ran the migration as a post-deploy hook, so new code served traffic against the old schema."
        ),
        lambda v: (
            "Run migrations as a pre-deploy job and make schema changes backward compatible (expand, deploy, contract)."
        ),
        [
            "Check the migration job status",
            "Compare django_migrations with the release",
            "Roll back or run the migration",
        ],
        lambda v: f"the new {v.service} build queries a table field that the database does not have yet",
        lambda v: f"column {v.key} does not exist ProgrammingError",
    ),
    Scenario(
        "cpu-throttling",
        ["kubernetes", "cpu", "latency"],
        lambda v: _pick(
            v,
            f"High latency on {v.service}: CPU throttling",
            f"{v.service} p99 latency {v.latency} ms, container CPU throttled",
            f"CFS throttling on {v.service} pods",
        ),
        lambda v: (
            f"Alert CPUThrottlingHigh: {v.percent + 25}% throttling of CPU in namespace {v.service} for container app in pod {v.pod}."
        ),
        lambda v: (
            f"{v.service} p99 rose to {v.latency} ms while average CPU usage looked fine at 40%; gunicorn workers were throttled in bursts."
        ),
        lambda v: (
            "The CPU limit of 500m with 4 gunicorn workers meant bursts exhausted the CFS quota within a few milliseconds of each 100 ms period."
        ),
        lambda v: (
            "Removed the CPU limit (kept the request), matched workers to requested cores, and alerted on throttling ratio."
        ),
        [
            "Check container_cpu_cfs_throttled_periods_total",
            "Compare CPU limit with worker count",
            "Look at request latency histograms",
        ],
        lambda v: f"{v.service} got slow because the container is not allowed enough processor time during bursts",
        lambda v: f"cpu throttling latency {v.service}",
    ),
    Scenario(
        "s3-access-denied",
        ["aws", "s3", "credentials"],
        lambda v: _pick(
            v,
            f"S3 AccessDenied from {v.service} uploading to bucket",
            f"{v.service}: botocore ClientError AccessDenied on PutObject",
            f"ExpiredToken when {v.service} writes to S3",
        ),
        lambda v: (
            f"{v.frames()}\nbotocore.exceptions.ClientError: An error occurred ({_pick(v, 'AccessDenied', 'ExpiredToken')}) when calling the PutObject operation: Access Denied"
        ),
        lambda v: (
            f"Uploads from {v.service} to s3://{v.service}-{v.env}-assets failed for {v.minutes} minutes in {v.region}."
        ),
        lambda v: (
            "The IAM role's trust policy was changed by a Terraform apply that dropped the IRSA service account condition."
        ),
        lambda v: (
            "Restored the trust relationship for the service account, and added a policy test in CI for the role."
        ),
        ["Run aws sts get-caller-identity from the pod", "Check CloudTrail for the denied call", "Diff the IAM policy"],
        lambda v: f"{v.service} is no longer allowed to put files into its storage bucket",
        lambda v: "S3 AccessDenied PutObject",
    ),
    Scenario(
        "jwt-expired",
        ["auth", "jwt", "clock"],
        lambda v: _pick(
            v,
            f"{v.service}: jwt.exceptions.ExpiredSignatureError for fresh tokens",
            "Users logged out: token rejected as expired",
            f"Clock skew on {v.node} breaks JWT validation",
        ),
        lambda v: f"{v.frames()}\njwt.exceptions.ExpiredSignatureError: Signature has expired",
        lambda v: (
            f"{v.percent}% of authenticated requests to {v.service} returned 401 for {v.minutes} minutes; all failures came from pods on {v.node}."
        ),
        lambda v: (
            f"chrony was stopped on {v.node} after an OS upgrade and its clock drifted by several minutes, so fresh tokens looked expired."
        ),
        lambda v: (
            "Restarted chrony, added a clock-offset alert from node_exporter, and allowed 30 seconds of leeway in token validation."
        ),
        ["Check node_timex_offset_seconds", "Compare `date` on the node with NTP", "Verify the token's iat and exp"],
        lambda v: (
            "people were bounced out of their sessions because the server's time was wrong and valid logins looked stale"
        ),
        lambda v: "ExpiredSignatureError jwt clock skew",
    ),
    Scenario(
        "too-many-open-files",
        ["linux", "file-descriptors"],
        lambda v: _pick(
            v,
            f"OSError: [Errno 24] Too many open files in {v.service}",
            f"{v.service} leaking file descriptors",
            f"EMFILE errors on {v.host}",
        ),
        lambda v: f"{v.frames()}\nOSError: [Errno 24] Too many open files",
        lambda v: (
            f"{v.service} started refusing connections after about {v.minutes} hours of uptime; lsof showed {v.count} open sockets in CLOSE_WAIT."
        ),
        lambda v: (
            f"An HTTP client to {v.upstream} was created per request and never closed, leaking one socket each time."
        ),
        lambda v: (
            "Share one client per process with a bounded connection pool and close responses; raised the nofile ulimit as a stopgap."
        ),
        [
            "Count descriptors with ls /proc/PID/fd | wc -l",
            "Group lsof output by type and remote address",
            "Check ulimit -n",
        ],
        lambda v: (
            f"{v.service} keeps handles to network connections and never gives them back until the process runs out"
        ),
        lambda v: "too many open files Errno 24",
    ),
    Scenario(
        "replication-lag",
        ["database", "postgres", "replication"],
        lambda v: _pick(
            v,
            f"Replication lag on {v.db} above {v.minutes} seconds",
            f"{v.service} reads stale data from replica",
            f"PostgreSQL replica {v.db} falling behind primary",
        ),
        lambda v: (
            f'Alert PostgresReplicationLagHigh: pg_replication_lag_seconds{{instance="{v.db}"}} = {v.minutes * 7}'
        ),
        lambda v: (
            f"Users of {v.service} saw orders disappear right after creating them; the read replica {v.db} lagged by up to {v.minutes * 7} seconds."
        ),
        lambda v: (
            "A bulk UPDATE of millions of rows generated a WAL burst that the replica's disk could not apply fast enough."
        ),
        lambda v: (
            "Batch large updates in chunks of 10,000 rows with pauses, and route read-your-writes requests to the primary."
        ),
        ["Check pg_stat_replication replay_lag", "Look for long transactions on the primary", "Check replica disk IO"],
        lambda v: (
            f"the copy of the database that {v.service} reads from is minutes behind, so fresh writes don't show up"
        ),
        lambda v: f"replication lag {v.db}",
    ),
    Scenario(
        "celery-backlog",
        ["queue", "workers", "backlog"],
        lambda v: _pick(
            v,
            f"Task queue backlog: {v.count} tasks waiting in {v.queue}",
            f"{v.service} background jobs stuck",
            f"Worker pool saturated, {v.queue} tasks delayed {v.minutes} minutes",
        ),
        lambda v: f"{v.frames()}\ncelery.exceptions.SoftTimeLimitExceeded: SoftTimeLimitExceeded()",
        lambda v: (
            f"{v.queue} grew to {v.count} pending tasks; invoices and emails from {v.service} went out {v.minutes} minutes late."
        ),
        lambda v: (
            f"A task calling {v.upstream} had no timeout, so workers hung on slow responses until the soft time limit and the pool filled up."
        ),
        lambda v: (
            "Set connect/read timeouts on every outbound call, split slow tasks onto their own queue, and autoscale workers on queue depth."
        ),
        [
            "Check queue depth and worker concurrency",
            "Inspect active tasks for long runners",
            "Scale workers or purge poison tasks",
        ],
        lambda v: f"jobs for {v.service} pile up because every worker is stuck waiting on something slow",
        lambda v: f"task backlog {v.queue} workers stuck",
    ),
    Scenario(
        "unicode-error",
        ["python", "encoding"],
        lambda v: _pick(
            v,
            f"UnicodeDecodeError importing CSV in {v.service}",
            f"{v.service}: 'utf-8' codec can't decode byte 0x{v.rng.randint(128, 255):x}",
            "Catalog import fails on non-UTF-8 file",
        ),
        lambda v: (
            f"{v.frames()}\nUnicodeDecodeError: 'utf-8' codec can't decode byte 0x{v.rng.randint(128, 255):x} in position {v.count}: invalid start byte"
        ),
        lambda v: (
            f"The nightly import in {v.service} stopped at row {v.count % 5000}; {v.count} products were not updated."
        ),
        lambda v: "A supplier started sending Windows-1252 encoded files exported from Excel.",
        lambda v: (
            "Detect the encoding with charset-normalizer, decode with errors reported per row, and notify the supplier."
        ),
        [
            "Check the file with `file -i`",
            "Find the offending byte offset",
            "Re-run the import with the right encoding",
        ],
        lambda v: (
            f"a supplier's spreadsheet export uses a different character set and {v.service} trips over an accented letter"
        ),
        lambda v: "UnicodeDecodeError utf-8 codec can't decode",
    ),
    Scenario(
        "health-check-failing",
        ["kubernetes", "probes", "availability"],
        lambda v: _pick(
            v,
            f"{v.service} readiness probe failing, pods removed from service",
            f"Liveness probe restarts {v.service} under load",
            f"{v.service}: 503 Service Unavailable from ingress",
        ),
        lambda v: (
            f'Warning  Unhealthy  kubelet  Readiness probe failed: Get "http://10.{v.rng.randint(0, 255)}.{v.rng.randint(0, 255)}.{v.rng.randint(1, 254)}:8000/healthz": context deadline exceeded (Client.Timeout exceeded while awaiting headers)'
        ),
        lambda v: (
            f"The ingress returned 503 for {v.minutes} minutes because all {v.service} pods were marked unready at once."
        ),
        lambda v: (
            f"The health endpoint checked {v.db} and {v.redis}; a short database blip made every pod unready simultaneously."
        ),
        lambda v: (
            "Liveness checks only the process; readiness tolerates brief dependency failures; timeouts raised from 1s to 3s."
        ),
        [
            "kubectl describe pod for probe failures",
            "Hit /healthz from inside the pod",
            "Check what the probe depends on",
        ],
        lambda v: (
            f"the orchestrator thinks {v.service} is sick and stops sending it traffic even though it's mostly fine"
        ),
        lambda v: f"readiness probe failed {v.service}",
    ),
    Scenario(
        "stripe-idempotency",
        ["payments", "idempotency", "duplicates"],
        lambda v: _pick(
            v,
            "Customers charged twice after payment retry",
            f"Duplicate charges from {v.service} retries",
            f"{v.upstream} idempotency key reused with different parameters",
        ),
        lambda v: (
            f"{v.upstream}.error.IdempotencyError: Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '{v.request_id}' if you meant to execute a different request."
        ),
        lambda v: f"{v.count % 300 + 5} customers were charged twice; support received tickets under {v.ticket}.",
        lambda v: (
            f"A timeout on the first capture call made {v.service} retry with a fresh idempotency key instead of reusing the original one."
        ),
        lambda v: (
            "Derive the idempotency key from the order id and attempt, store it before the call, and reconcile captures nightly."
        ),
        [
            "List charges by order id in the provider dashboard",
            "Refund the duplicates",
            "Check retry code for key reuse",
        ],
        lambda v: (
            "some buyers paid two times for one purchase because a retry did not reuse the original request token"
        ),
        lambda v: "duplicate charge idempotency key",
    ),
    Scenario(
        "n-plus-one",
        ["database", "performance", "orm"],
        lambda v: _pick(
            v,
            f"Slow endpoint {v.route}: {v.count % 2000 + 200} queries per request",
            f"{v.service} N+1 queries on list view",
            f"Database CPU high from {v.service} list endpoint",
        ),
        lambda v: (
            f"Sentry performance issue: N+1 Query on {v.route} — {v.count % 2000 + 200} spans of SELECT ... FROM {v.service.replace('-', '_')}_item WHERE id = %s"
        ),
        lambda v: (
            f"{v.route} took {v.latency} ms at p95 and {v.db} CPU hit 90% when a large customer opened their dashboard."
        ),
        lambda v: (
            "A serializer field accessed a related object for each row without select_related or prefetch_related."
        ),
        lambda v: (
            "Added prefetch_related for the relation and a test asserting the query count with django_assert_num_queries."
        ),
        [
            "Enable query logging for one request",
            "Look for repeated identical queries",
            "Add select_related/prefetch_related",
        ],
        lambda v: f"a listing page in {v.service} talks to the database once per row instead of once per page",
        lambda v: f"N+1 queries {v.route}",
    ),
]

RUNBOOK_TITLES = [
    "Runbook: {topic}",
    "How to handle {topic}",
    "{topic} — on-call playbook",
    "Playbook for {topic} on {service}",
]

# People describe the same thing in different words; each entry picks its own.
SYNONYMS = {
    "failed": ["failed", "errored", "broke", "were failing"],
    "started": ["started", "began"],
    "requests": ["requests", "calls", "API calls"],
    "rose": ["rose", "climbed", "jumped"],
    "minutes": ["minutes", "min"],
    "latency": ["latency", "response time"],
    "deploy": ["deploy", "release", "rollout"],
    "added": ["added", "introduced", "put in"],
    "because": ["because", "since", "as"],
    "errors": ["errors", "failures", "exceptions"],
    "Checked": ["Checked", "Looked at", "Verified"],
}
_SYNONYM_PATTERN = None


def reword(text: str, rng: random.Random) -> str:
    """Swap some words for synonyms, as different authors would write the same sentence."""
    import re

    global _SYNONYM_PATTERN
    if _SYNONYM_PATTERN is None:
        _SYNONYM_PATTERN = re.compile(r"(?<![-/_])\b(" + "|".join(SYNONYMS) + r")\b(?![-/_])")
    return _SYNONYM_PATTERN.sub(lambda match: rng.choice(SYNONYMS[match.group(1)]), text)


def _context_lines(v: Vary) -> list[str]:
    """Lines that real write-ups carry besides the story: timeline, links, who, where."""
    rng = v.rng
    hour, minute = rng.randint(0, 23), rng.randint(0, 50)
    pool = [
        f"{hour:02d}:{minute:02d} UTC alert fired; {hour:02d}:{minute + rng.randint(1, 9):02d} {v.person} acknowledged.",
        f"Dashboard: https://grafana.internal/d/{v.sha}/{v.service}-overview?var-region={v.region}",
        f"Slack: #{v.ticket.lower()} · owner {v.team}",
        f"Affected {v.noun.replace('_', ' ')} records: about {v.count}.",
        f"Pod {v.pod} on {v.node} ({v.host}) was the first to report it.",
        f"Related code: {v.module} ({v.klass}), table {v.table}.",
        f"Customer-facing: {rng.choice(['yes, status page updated', 'no', 'partially, support notified'])}.",
        f"Deployed version at the time: {v.version} ({v.sha}).",
        f"Sentry issue {v.service.upper()[:4]}-{rng.randint(100, 9999)}, {v.count} events, first seen {hour:02d}:{minute:02d}.",
    ]
    return rng.sample(pool, rng.randint(1, 4))


def _also(v: Vary) -> str:
    """Sometimes a second problem showed up in the same window."""
    if v.rng.random() < 0.25:
        other = v.rng.choice(SCENARIOS)
        return f"\n\nAlso seen in the same window: {other.title(v)}."
    return ""


def _incident_summary(scenario: Scenario, v: Vary) -> Entry:
    parts = [f"Service: {v.service} ({v.env}, {v.region})", reword(scenario.symptoms(v), v.rng), scenario.error(v)]
    if v.rng.random() < 0.7:
        parts.append(f"Resolution: {reword(scenario.fix(v), v.rng)}")
    if v.rng.random() < 0.4:
        parts.insert(2, f"Cause: {reword(scenario.cause(v), v.rng)}")
    parts.insert(1, "\n".join(_context_lines(v)))
    body = "\n\n".join(parts) + _also(v)
    return Entry(scenario.title(v), body, "incident_summary", [v.service], list(scenario.tags), scenario.name)


def _postmortem(scenario: Scenario, v: Vary) -> Entry:
    timeline = "\n".join(f"- {line}" for line in _context_lines(v))
    body = (
        f"## Summary\n{reword(scenario.symptoms(v), v.rng)}\n\n"
        f"## Impact\n{v.percent}% of requests to {v.service} in {v.region} were affected for {v.minutes} minutes. "
        f"Detected by alert, acknowledged by {v.person} ({v.team}).\n\n"
        f"## Timeline\n{timeline}\n\n"
        f"## Root cause\n{reword(scenario.cause(v), v.rng)}\n\n"
        f"## Trigger\n{scenario.error(v)}\n\n"
        f"## Resolution\n{reword(scenario.fix(v), v.rng)}\n\n"
        f"## Action items\n- {v.rng.choice(scenario.steps)}\n- Add an alert and a test so this is caught earlier ({v.ticket})"
    ) + _also(v)
    title = f"Postmortem: {scenario.title(v)}"
    return Entry(title, body, "postmortem", [v.service], [*scenario.tags, "postmortem"], scenario.name)


def _fix(scenario: Scenario, v: Vary) -> Entry:
    body = (
        f"Fix for {v.ticket} in {v.service} ({v.module}, {v.klass}, line {v.lineno}).\n\n"
        f"Problem: {reword(scenario.cause(v), v.rng)}\n\nChange: {reword(scenario.fix(v), v.rng)}\n\n"
        f"Merged as PR #{v.pr} ({v.sha}) by {v.person}; released in {v.version}."
    )
    if v.rng.random() < 0.5:
        body += f"\n\nFailing test before the fix:\n{scenario.error(v).splitlines()[-1]}"
    return Entry(
        f"Fix: {scenario.title(v)}", body, "fix", [v.service], [*scenario.tags, "fix"], scenario.name, v.module
    )


def _runbook(scenario: Scenario, v: Vary) -> Entry:
    topic = scenario.title(v)
    title = v.rng.choice(RUNBOOK_TITLES).format(topic=topic, service=v.service)
    steps = v.rng.sample(scenario.steps, v.rng.randint(2, len(scenario.steps)))
    steps_text = "\n".join(f"{number}. {reword(step, v.rng)}" for number, step in enumerate(steps, 1))
    body = (
        f"When: {reword(scenario.symptoms(v), v.rng)}\n\nTypical error:\n{scenario.error(v)}\n\n"
        f"Steps:\n{steps_text}\n\nLikely cause: {reword(scenario.cause(v), v.rng)}\n\nOwner: {v.team}."
    )
    path = f"runbooks/{v.service}/{scenario.name}.md"
    return Entry(title, body, "runbook", [v.service], [*scenario.tags, "runbook"], scenario.name, path)


def _note(scenario: Scenario, v: Vary) -> Entry:
    opening = v.rng.choice([scenario.paraphrase(v), scenario.symptoms(v), scenario.title(v)])
    body = f"{v.person}: {reword(opening, v.rng)}. {reword(scenario.cause(v), v.rng)} See {v.ticket}."
    title = v.rng.choice(
        [f"Note on {v.service}: {scenario.keywords(v)}", f"{v.service}: {scenario.title(v)}", scenario.title(v)]
    )
    return Entry(title, body, "note", [v.service], list(scenario.tags), scenario.name)


# Shares of each kind in a knowledge base that has been in use for a while.
KIND_WEIGHTS = [(_incident_summary, 45), (_postmortem, 15), (_fix, 20), (_runbook, 5), (_note, 15)]


def generate_entries(count: int, seed: int = 7) -> list[Entry]:
    """`count` entries; kinds and scenarios mixed as a real knowledge base would be."""
    rng = random.Random(seed)
    builders = [builder for builder, _ in KIND_WEIGHTS]
    weights = [weight for _, weight in KIND_WEIGHTS]
    entries = []
    for _ in range(count):
        scenario = rng.choice(SCENARIOS)
        builder = rng.choices(builders, weights)[0]
        entries.append(builder(scenario, Vary(rng)))
    return entries


# Half of the traffic is the diagnose step's (one query per new incident), half people's.
QUERY_SHAPES = ("incident", "keywords", "incident", "title", "incident", "error", "incident", "paraphrase")


def generate_queries(count: int, seed: int = 11) -> list[Query]:
    """Queries in the shapes they come in: what an engineer types (keywords, a title, an error line, a
    paraphrase) and what the diagnose step sends for a new incident (title, message and stack trace)."""
    rng = random.Random(seed)
    queries = []
    for index in range(count):
        scenario = rng.choice(SCENARIOS)
        v = Vary(rng)
        shape = QUERY_SHAPES[index % len(QUERY_SHAPES)]
        if shape == "incident":
            text = f"{scenario.title(v)}\n{scenario.error(v)}"
        elif shape == "keywords":
            text = scenario.keywords(v)
        elif shape == "title":
            text = scenario.title(v)
        elif shape == "error":
            text = scenario.error(v).splitlines()[-1]
        else:
            text = scenario.paraphrase(v)
        queries.append(Query(text, scenario.name, shape, [v.service]))
    return queries


if __name__ == "__main__":  # a look at what it writes
    for entry in generate_entries(6, seed=1):
        print(f"--- [{entry.kind}] {entry.title}\n{entry.body}\n")
    for query in generate_queries(8):
        print(f"[{query.shape}] {query.text}")
