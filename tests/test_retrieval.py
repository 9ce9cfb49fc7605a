"""Hybrid retrieval (BM25F + pgvector, fused into one calibrated score) on a realistic knowledge base.

Everything is real: entries go through the knowledge writer, incident signatures through
`embed_incident_signature`, both embedded by the configured (local) provider, and the
queries run on the embedded PostgreSQL with its HNSW and GIN indexes.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from incidents.choices import IncidentStatus
from incidents.models import Incident
from knowledge import retrieval
from knowledge.embeddings import get_provider
from knowledge.models import IncidentSignature, KnowledgeEntry, KnowledgeKind, KnowledgePath
from knowledge.services import embed_incident_signature, write_knowledge

# (key, kind, services, title, body): what a team's knowledge base holds after a few months.
ENTRIES = [
    (
        "keyerror-stripe",
        "incident_summary",
        ["payments"],
        "KeyError 'customer_id' in Stripe webhook handler",
        "payments started returning 500 on POST /webhooks/stripe after Stripe sent charge.refunded events "
        "without a customer.\n\nTraceback (most recent call last):\n"
        '  File "/app/payments/handlers/webhook.py", line 88, in handle_charge_refunded\n'
        "    customer = payload['data']['object']['customer_id']\nKeyError: 'customer_id'\n\n"
        "Resolution: read the field with payload.get() and skip events without a customer.",
    ),
    (
        "keyerror-runbook",
        "runbook",
        ["payments"],
        "Runbook: webhook payload missing a field",
        "When a provider changes its webhook payloads, handlers that index the payload directly raise "
        "KeyError. Check the provider's API changelog, pin the webhook API version, deploy a tolerant "
        "parser and replay the failed events from the dead-letter queue.",
    ),
    (
        "pool-exhausted",
        "postmortem",
        ["orders"],
        "Postmortem: database connection pool exhausted on orders",
        "## Summary\norders requests hung and failed with\n"
        "sqlalchemy.exc.TimeoutError: QueuePool limit of size 20 overflow 10 reached, connection timed out\n"
        "## Root cause\nA report query held connections idle in transaction; autoscaling to 12 pods multiplied "
        "the pool past max_connections on orders-db.\n## Resolution\nPgBouncer in transaction mode, "
        "idle_in_transaction_session_timeout = 60s.",
    ),
    (
        "too-many-clients",
        "incident_summary",
        ["billing"],
        "FATAL: sorry, too many clients already on billing-db",
        "psycopg.OperationalError: connection failed: FATAL: sorry, too many clients already. "
        "The invoice batch opened one connection per worker thread. Lowered the pool size and put "
        "PgBouncer in front of billing-db.",
    ),
    (
        "disk-full",
        "incident_summary",
        ["media-upload"],
        "No space left on device on media-upload nodes",
        "OSError: [Errno 28] No space left on device: '/var/log/media/upload.log'. Debug logging was left on "
        "after an investigation and logrotate was disabled; /var/log filled at 2 GB per hour.",
    ),
    (
        "disk-runbook",
        "runbook",
        [],
        "Runbook: a filesystem is almost full",
        "1. Find the largest directories with du -xh --max-depth=2 | sort -h\n"
        "2. Delete rotated logs and core dumps older than 7 days\n"
        "3. Look for deleted files still held open with lsof +L1\n4. Extend the volume if growth is legitimate",
    ),
    (
        "redis-timeout",
        "incident_summary",
        ["checkout"],
        "Redis timeouts from checkout to the session cache",
        "redis.exceptions.TimeoutError: Timeout reading from redis-sessions:6379. A new code path ran "
        "KEYS session:* on every request and blocked Redis; replaced it with SCAN in a background job.",
    ),
    (
        "redis-oom",
        "fix",
        ["search"],
        "Fix: Redis OOM command not allowed when used memory > maxmemory",
        "redis.exceptions.ResponseError: OOM command not allowed when used memory > 'maxmemory'. "
        "Cache keys had no TTL; set maxmemory-policy allkeys-lru and a TTL of one day on search results.",
    ),
    (
        "deploy-5xx",
        "postmortem",
        ["checkout"],
        "Postmortem: 5xx spike after deploying checkout 4.12.0",
        "Within three minutes of the rollout the 5xx ratio on POST /api/v1/checkout/confirm reached 18%.\n"
        "AttributeError: 'NoneType' object has no attribute 'currency'\n"
        "Rolled back with kubectl rollout undo deployment/checkout; the serializer change assumed a logged-in "
        "user for anonymous carts.",
    ),
    (
        "oomkilled",
        "incident_summary",
        ["reporting"],
        "reporting worker pods OOMKilled (limit 1Gi)",
        "Last State: Terminated, Reason: OOMKilled, exit code 137. The CSV export loaded the whole queryset "
        "into memory with list(queryset); streaming it with iterator(chunk_size=2000) fixed it.",
    ),
    (
        "sigterm",
        "note",
        ["reporting"],
        "Workers killed during rollout",
        "Containers stopped with exit code 143 (SIGTERM) before the graceful timeout because gunicorn's "
        "graceful_timeout exceeded terminationGracePeriodSeconds.",
    ),
    (
        "tls-expired",
        "incident_summary",
        ["api-gateway"],
        "TLS certificate expired for api.example.com",
        "ssl.SSLCertVerificationError: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: "
        "certificate has expired. cert-manager could not renew because the ACME HTTP-01 challenge path was "
        "blocked by an ingress rule.",
    ),
    (
        "dns",
        "incident_summary",
        ["shipping"],
        "Temporary failure in name resolution calling the carrier API",
        "socket.gaierror: [Errno -3] Temporary failure in name resolution. CoreDNS pods were at their CPU "
        "limit; ndots:5 multiplied lookups. Set ndots:2 and enabled NodeLocal DNSCache.",
    ),
    (
        "kafka-lag",
        "incident_summary",
        ["notifications"],
        "Kafka consumer lag on email-outbox",
        "CommitFailedError: the group has already rebalanced. Processing a batch took longer than "
        "max.poll.interval.ms because of slow SendGrid calls, so consumers were evicted in a loop.",
    ),
    (
        "deadlock",
        "fix",
        ["inventory"],
        "Fix: deadlock detected reserving stock",
        "psycopg.errors.DeadlockDetected: deadlock detected. Two code paths locked order and stock rows in "
        "opposite order; now both lock by primary key with select_for_update().",
    ),
    (
        "rate-limited",
        "incident_summary",
        ["notifications"],
        "Twilio returning 429 Too Many Requests",
        "httpx.HTTPStatusError: Client error '429 Too Many Requests' for url 'https://api.twilio.com/...'. "
        "A backfill job shared the live API key; added backoff honouring Retry-After.",
    ),
    (
        "jwt-skew",
        "incident_summary",
        ["auth"],
        "ExpiredSignatureError for freshly issued tokens",
        "jwt.exceptions.ExpiredSignatureError: Signature has expired. chrony was stopped on node-b07 after an "
        "OS upgrade and the clock drifted four minutes.",
    ),
    (
        "celery-backlog",
        "incident_summary",
        ["billing"],
        "Invoice tasks stuck: SoftTimeLimitExceeded",
        "celery.exceptions.SoftTimeLimitExceeded. Tasks calling TaxJar had no timeout and the worker pool "
        "filled up; 40,000 invoices went out late.",
    ),
    (
        "unicode",
        "fix",
        ["catalog"],
        "Fix: UnicodeDecodeError importing supplier CSV",
        "UnicodeDecodeError: 'utf-8' codec can't decode byte 0xe9 in position 1042: invalid continuation byte. "
        "The supplier now exports Windows-1252; detect the encoding with charset-normalizer.",
    ),
    (
        "chk-4471",
        "incident_summary",
        ["checkout"],
        "Tax provider rejects checkout totals",
        "The tax provider answered CHK-4471 (jurisdiction not configured) for orders shipped to Puerto Rico; "
        "checkout could not compute totals. Added the jurisdiction in the provider dashboard.",
    ),
    (
        "chk-1203",
        "incident_summary",
        ["checkout"],
        "Tax provider rejects checkout address",
        "The tax provider answered CHK-1203 (address not found) for orders with a PO box; checkout could not "
        "compute totals. Fallback to the ZIP centroid rate.",
    ),
    (
        "chk-3390",
        "note",
        ["checkout"],
        "Tax provider checkout error codes",
        "Tax provider checkout errors: CHK-3390 means the API key is in test mode. Checkout totals fail with "
        "it in staging after a key rotation.",
    ),
    (
        "n-plus-one",
        "fix",
        ["catalog"],
        "Fix: N+1 queries on the product list endpoint",
        "GET /api/v1/products issued 1,200 queries per request; added prefetch_related('variants') and a "
        "django_assert_num_queries test.",
    ),
    (
        "replication-lag",
        "incident_summary",
        ["orders"],
        "Read replica lag: orders disappear after creation",
        "The orders read replica lagged 90 seconds behind the primary after a bulk UPDATE generated a WAL "
        "burst. Read-your-writes requests now go to the primary.",
    ),
    (
        "s3-denied",
        "incident_summary",
        ["media-upload"],
        "S3 AccessDenied on PutObject",
        "botocore.exceptions.ClientError: An error occurred (AccessDenied) when calling the PutObject "
        "operation. A Terraform apply dropped the IRSA condition from the role's trust policy.",
    ),
    (
        "fd-leak",
        "incident_summary",
        ["webhooks"],
        "OSError: [Errno 24] Too many open files",
        "webhooks leaked one socket per delivery because an httpx.Client was created per request and never "
        "closed; lsof showed 60,000 sockets in CLOSE_WAIT.",
    ),
    (
        "probe",
        "runbook",
        [],
        "Runbook: readiness probe failing",
        "kubectl describe pod shows 'Readiness probe failed: context deadline exceeded'. Check what /healthz "
        "depends on; a database blip must not make every pod unready at once.",
    ),
    (
        "idempotency",
        "postmortem",
        ["payments"],
        "Postmortem: customers charged twice",
        "A timeout on the first capture made the service retry with a fresh idempotency key. Keys are now "
        "derived from the order id and stored before the call.",
    ),
    (
        "cpu-throttle",
        "note",
        ["search"],
        "search latency from CPU throttling",
        "p99 of search rose to 2.5 s while CPU looked fine: CFS throttling with a 500m limit and 4 gunicorn "
        "workers. Removed the CPU limit, kept the request.",
    ),
    (
        "missing-column",
        "incident_summary",
        ["subscriptions"],
        'ProgrammingError: column "trial_ends_at" does not exist',
        "New pods of subscriptions started before the migration job finished. Migrations now run as a "
        "pre-deploy job and schema changes are backward compatible.",
    ),
    (
        "json-html",
        "incident_summary",
        ["shipping"],
        "JSONDecodeError: Expecting value from the carrier API",
        "json.decoder.JSONDecodeError: Expecting value: line 1 column 1 (char 0). The carrier served an HTML "
        "maintenance page with status 200 through its CDN.",
    ),
    (
        "flag",
        "note",
        ["pricing"],
        "Feature flag left on in production",
        "new_discount_engine was enabled for all tenants instead of 5%; prices were computed twice. Flags now "
        "default to off and changes need a second reviewer.",
    ),
]

# (key, status, service, title, exception_type, message, culprit): incidents Quench has seen.
INCIDENTS = [
    (
        "past-keyerror",
        IncidentStatus.RESOLVED,
        "payments",
        "KeyError: 'customer_id'",
        "KeyError",
        "'customer_id'",
        "payments.handlers.webhook.handle_charge_refunded",
    ),
    (
        "past-pool",
        IncidentStatus.RESOLVED,
        "orders",
        "TimeoutError: QueuePool limit of size 20 overflow 10 reached",
        "sqlalchemy.exc.TimeoutError",
        "QueuePool limit of size 20 overflow 10 reached, connection timed out, timeout 30.00",
        "orders.services.fulfil.reserve",
    ),
    (
        "past-redis",
        IncidentStatus.RESOLVED,
        "checkout",
        "TimeoutError: Timeout reading from socket",
        "redis.exceptions.TimeoutError",
        "Timeout reading from redis-sessions:6379",
        "checkout.sessions.load_cart",
    ),
    (
        "past-disk",
        IncidentStatus.RESOLVED,
        "media-upload",
        "OSError: [Errno 28] No space left on device",
        "OSError",
        "[Errno 28] No space left on device: '/var/log/media/upload.log'",
        "media.upload.write_chunk",
    ),
    (
        "past-none",
        IncidentStatus.RESOLVED,
        "checkout",
        "AttributeError: 'NoneType' object has no attribute 'currency'",
        "AttributeError",
        "'NoneType' object has no attribute 'currency'",
        "checkout.serializers.CartSerializer.get_totals",
    ),
    (
        "past-ssl",
        IncidentStatus.RESOLVED,
        "api-gateway",
        "SSLCertVerificationError: certificate has expired",
        "ssl.SSLCertVerificationError",
        "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: certificate has expired",
        "gateway.proxy.forward",
    ),
    (
        "past-dns",
        IncidentStatus.RESOLVED,
        "shipping",
        "gaierror: Temporary failure in name resolution",
        "socket.gaierror",
        "[Errno -3] Temporary failure in name resolution",
        "shipping.carriers.ups.get_rates",
    ),
    (
        "past-deadlock",
        IncidentStatus.RESOLVED,
        "inventory",
        "DeadlockDetected: deadlock detected",
        "psycopg.errors.DeadlockDetected",
        "deadlock detected",
        "inventory.reservations.reserve_stock",
    ),
    (
        "past-jwt",
        IncidentStatus.RESOLVED,
        "auth",
        "ExpiredSignatureError: Signature has expired",
        "jwt.exceptions.ExpiredSignatureError",
        "Signature has expired",
        "auth.tokens.decode",
    ),
    (
        "past-unicode",
        IncidentStatus.RESOLVED,
        "catalog",
        "UnicodeDecodeError: 'utf-8' codec can't decode byte",
        "UnicodeDecodeError",
        "'utf-8' codec can't decode byte 0xe9 in position 1042: invalid continuation byte",
        "catalog.importers.csv.read_rows",
    ),
    (
        "past-429",
        IncidentStatus.RESOLVED,
        "notifications",
        "HTTPStatusError: 429 Too Many Requests",
        "httpx.HTTPStatusError",
        "Client error '429 Too Many Requests' for url 'https://api.twilio.com/2010-04-01/Messages.json'",
        "notifications.senders.sms.send",
    ),
    (
        "past-keyerror-orders",
        IncidentStatus.RESOLVED,
        "orders",
        "KeyError: 'sku'",
        "KeyError",
        "'sku'",
        "orders.importers.marketplace.parse_line",
    ),
    (
        "past-fd",
        IncidentStatus.ACKNOWLEDGED,
        "webhooks",
        "OSError: [Errno 24] Too many open files",
        "OSError",
        "[Errno 24] Too many open files",
        "webhooks.dispatch.deliver",
    ),
    (
        "past-json",
        IncidentStatus.RESOLVED,
        "shipping",
        "JSONDecodeError: Expecting value",
        "json.decoder.JSONDecodeError",
        "Expecting value: line 1 column 1 (char 0)",
        "shipping.carriers.dhl.parse_response",
    ),
    (
        "past-celery",
        IncidentStatus.RESOLVED,
        "billing",
        "SoftTimeLimitExceeded",
        "celery.exceptions.SoftTimeLimitExceeded",
        "SoftTimeLimitExceeded()",
        "billing.tasks.charge.charge_invoice",
    ),
    (
        "past-column",
        IncidentStatus.RESOLVED,
        "subscriptions",
        'ProgrammingError: column "trial_ends_at" does not exist',
        "django.db.utils.ProgrammingError",
        'column "trial_ends_at" of relation "subscriptions_plan" does not exist',
        "subscriptions.renewals.renew",
    ),
]


def _fingerprint() -> str:
    return uuid.uuid4().hex + uuid.uuid4().hex[:32]


def make_incident(
    *, service: str, title: str, exception_type: str = "", message: str = "", culprit: str = "", status=None
) -> Incident:
    """An incident as ingestion leaves it (fields the signature reads), without going through HTTP."""
    now = timezone.now()
    return Incident.objects.create(
        fingerprint=_fingerprint()[:64],
        fingerprint_version=1,
        fingerprint_strategy="test",
        title=title,
        message=message,
        kind="error",
        source="generic",
        service=service,
        exception_type=exception_type,
        culprit=culprit,
        status=status or IncidentStatus.TRIGGERED,
        first_seen=now - timedelta(days=3),
        last_seen=now - timedelta(days=2),
    )


def build_knowledge() -> dict[str, KnowledgeEntry]:
    """The entries above, written through the knowledge writer (embedded by the current provider)."""
    entries = {}
    for key, kind, services, title, body in ENTRIES:
        entries[key] = write_knowledge(
            path_type=KnowledgePath.MANUAL, title=title, body=body, kind=kind, services=services, tags=[]
        )
        assert entries[key] is not None
    return entries


def build_incidents() -> dict[str, Incident]:
    """The incidents above, each with its signature embedded as the embed_incident task does."""
    incidents = {}
    for key, status, service, title, exception_type, message, culprit in INCIDENTS:
        incident = make_incident(
            service=service,
            title=title,
            exception_type=exception_type,
            message=message,
            culprit=culprit,
            status=status,
        )
        assert embed_incident_signature(incident.pk) is not None
        incidents[key] = incident
    return incidents


@pytest.fixture
def knowledge(db):
    return build_knowledge()


@pytest.fixture
def past_incidents(db):
    return build_incidents()


def _keys(hits, objects) -> list[str]:
    by_id = {obj.pk: key for key, obj in objects.items()}
    return [by_id.get(hit.id, f"#{hit.id}") for hit in hits]


# --- knowledge search ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("KeyError customer_id stripe webhook", "keyerror-stripe"),
        ("connection pool exhausted QueuePool limit", "pool-exhausted"),
        ("No space left on device /var/log", "disk-full"),
        ("redis timeout reading from redis-sessions", "redis-timeout"),
        ("500 errors right after deploy, NoneType has no attribute currency", "deploy-5xx"),
        ("pods OOMKilled exit code 137", "oomkilled"),
        ("certificate verify failed certificate has expired", "tls-expired"),
        ("deadlock detected", "deadlock"),
    ],
)
def test_the_truly_similar_entry_comes_first(knowledge, query, expected):
    hits = retrieval.search(query, k=5)

    assert _keys(hits, knowledge)[0] == expected


def test_an_exact_error_code_is_found_by_the_lexical_side_where_vectors_cannot_tell(knowledge):
    # The local provider ignores bare numbers, so CHK-4471, CHK-1203 and CHK-3390 embed
    # almost alike; only the lexical side sees the code (numbers of three digits or more
    # are kept as terms).
    query = "CHK-4471"

    vector_keys = _keys(retrieval.vector_search(query, k=3), knowledge)
    hits = retrieval.search(query, k=3)

    assert vector_keys[0] != "chk-4471"
    assert _keys(hits, knowledge)[0] == "chk-4471"
    assert hits[0].matched in {"lexical", "both"}
    assert hits[0].bm25 > max(hit.bm25 or 0 for hit in hits[1:])
    assert _keys(retrieval.text_search(query, k=3), knowledge)[0] == "chk-4471"


def test_camel_case_identifiers_match_the_words_they_are_made_of(knowledge):
    # No entry has PaymentWebhookHandler or customerId; split, they are payment, webhook,
    # handler, customer, id: the words of the Stripe KeyError entry.
    query = "PaymentWebhookHandler raises KeyError for customerId"

    lexical = retrieval.text_search(query, k=5)
    hits = retrieval.search(query, k=5)

    assert _keys(lexical, knowledge)[0] == "keyerror-stripe"
    assert _keys(hits, knowledge)[0] == "keyerror-stripe"
    assert hits[0].matched == "both"
    assert hits[0].bm25 > 0 and 0 < hits[0].similarity <= 1


def test_hits_carry_scores_and_how_they_matched(knowledge):
    hits = retrieval.search("Redis timeout", k=10)

    assert 2 <= len(hits) <= 10
    assert [hit.score for hit in hits] == sorted((hit.score for hit in hits), reverse=True)
    for hit in hits:
        assert isinstance(hit.object, KnowledgeEntry)
        assert hit.id == hit.object.pk and hit.title == hit.object.title and hit.kind == hit.object.kind
        assert 0 < hit.score < 1 and 0 < hit.similarity <= 1
        assert hit.matched == "semantic" if hit.bm25 is None else hit.matched in {"lexical", "both"}
    matched = dict(zip(_keys(hits, knowledge), (hit.matched for hit in hits), strict=True))
    # Only one entry has both words, and it is a near neighbour too; the other Redis entry
    # (an OOM, no "timeout") has one of them.
    assert matched["redis-timeout"] == "both"
    assert hits[0].score > dict(zip(_keys(hits, knowledge), hits, strict=True))["redis-oom"].score
    assert _keys(hits, knowledge)[0] == "redis-timeout"


def test_k_limits_the_results(knowledge):
    three = retrieval.search("database connection", k=3)
    assert len(three) == 3
    assert [hit.id for hit in retrieval.search("database connection", k=1)] == [three[0].id]


def test_filter_by_kind(knowledge):
    hits = retrieval.search("KeyError in webhook handler", k=10, kinds=[KnowledgeKind.RUNBOOK])

    assert hits
    assert {hit.kind for hit in hits} == {"runbook"}
    assert _keys(hits, knowledge)[0] == "keyerror-runbook"


def test_filter_by_several_kinds(knowledge):
    hits = retrieval.search("redis", k=10, kinds=["fix", "note"])

    assert hits and {hit.kind for hit in hits} <= {"fix", "note"}
    assert _keys(hits, knowledge)[0] == "redis-oom"


def test_filter_by_service(knowledge):
    hits = retrieval.search("KeyError", k=10, services=["orders", "billing"])

    assert hits
    assert all({"orders", "billing"} & set(hit.object.services) for hit in hits)
    assert "keyerror-stripe" not in _keys(hits, knowledge)


def test_filters_that_match_nothing_return_nothing(knowledge):
    assert retrieval.search("KeyError", k=5, services=["no-such-service"]) == []
    assert retrieval.search("KeyError", k=5, kinds=["runbook"], services=["checkout"]) == []


def test_an_empty_knowledge_base_returns_nothing(db):
    assert retrieval.search("KeyError customer_id", k=5) == []


def test_rows_of_another_provider_are_never_returned(knowledge):
    # The same text and the very same vector, labelled with another provider: a switch of
    # providers half-way through `reembed` leaves such rows, and they must not mix in.
    target = knowledge["chk-4471"]
    twin = KnowledgeEntry.objects.create(
        title=target.title,
        body=target.body,
        kind=target.kind,
        services=target.services,
        embedding=list(target.embedding),
        embedding_provider="some-other-model",
        embedding_dimension=get_provider().dimension,
    )
    unembedded = KnowledgeEntry.objects.create(title=target.title, body=target.body, kind=target.kind)

    for search in (retrieval.search, retrieval.vector_search, retrieval.text_search):
        ids = {hit.id for hit in search("CHK-4471 tax provider checkout totals", k=50)}
        assert target.pk in ids
        assert twin.pk not in ids and unembedded.pk not in ids


# --- similar incidents -----------------------------------------------------------------------


def test_a_new_incident_finds_its_past_twin_first(past_incidents):
    incident = make_incident(
        service="payments",
        title="KeyError: 'customer_id'",
        exception_type="KeyError",
        message="'customer_id'",
        culprit="payments.handlers.webhook.handle_dispute_created",
    )
    embed_incident_signature(incident.pk)

    hits = retrieval.similar_incidents(incident, k=5)

    assert _keys(hits, past_incidents)[0] == "past-keyerror"
    assert hits[0].kind == "incident"
    assert hits[0].object.status == IncidentStatus.RESOLVED
    assert hits[0].matched == "same_error"  # the same KeyError, raised in another handler
    assert incident.pk not in {hit.id for hit in hits}


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {
                "service": "orders",
                "title": "TimeoutError: QueuePool limit of size 40 overflow 10 reached",
                "exception_type": "sqlalchemy.exc.TimeoutError",
                "message": "QueuePool limit of size 40 overflow 10 reached, connection timed out, timeout 30.00",
                "culprit": "orders.api.views.list_orders",
            },
            "past-pool",
        ),
        (
            {
                "service": "media-upload",
                "title": "OSError: [Errno 28] No space left on device",
                "exception_type": "OSError",
                "message": "[Errno 28] No space left on device: '/data/tmp/chunk-88'",
                "culprit": "media.thumbnails.render",
            },
            "past-disk",
        ),
        (
            # A paraphrase with other identifiers: another module and exception path, the same failure.
            {
                "service": "checkout",
                "title": "Cache read timed out (redis)",
                "exception_type": "redis.exceptions.TimeoutError",
                "message": "Timeout connecting to redis-cache",
                "culprit": "checkout.cart.fetch_session",
            },
            "past-redis",
        ),
    ],
)
def test_similar_incidents_probes(past_incidents, fields, expected):
    incident = make_incident(**fields)
    embed_incident_signature(incident.pk)

    assert _keys(retrieval.similar_incidents(incident, k=3), past_incidents)[0] == expected


def test_an_incident_without_a_signature_is_embedded_on_the_fly(past_incidents):
    incident = make_incident(
        service="auth",
        title="ExpiredSignatureError: Signature has expired",
        exception_type="jwt.exceptions.ExpiredSignatureError",
        message="Signature has expired",
        culprit="auth.middleware.authenticate",
    )
    assert not IncidentSignature.objects.filter(incident=incident).exists()

    on_the_fly = retrieval.similar_incidents(incident, k=3)
    embed_incident_signature(incident.pk)
    stored = retrieval.similar_incidents(incident, k=3)

    assert _keys(on_the_fly, past_incidents)[0] == "past-jwt"
    assert [hit.id for hit in on_the_fly] == [hit.id for hit in stored]
    assert not IncidentSignature.objects.filter(incident=incident, embedding_provider="").exists()


def test_similar_incidents_never_returns_the_incident_itself(past_incidents):
    incident = past_incidents["past-keyerror"]

    hits = retrieval.similar_incidents(incident, k=20)

    assert incident.pk not in {hit.id for hit in hits}
    assert _keys(hits, past_incidents)[0] == "past-keyerror-orders"


def test_similar_incidents_filter_by_service(past_incidents):
    incident = make_incident(service="payments", title="KeyError: 'amount'", exception_type="KeyError")

    hits = retrieval.similar_incidents(incident, k=5, services=["orders"])

    assert hits and {hit.object.service for hit in hits} == {"orders"}
    assert _keys(hits, past_incidents)[0] == "past-keyerror-orders"


def test_similar_incidents_ignore_signatures_of_another_provider(past_incidents):
    past = past_incidents["past-deadlock"]
    twin_incident = make_incident(service="inventory", title=past.title, exception_type=past.exception_type)
    IncidentSignature.objects.create(
        incident=twin_incident,
        text=past.signature.text,
        embedding=list(past.signature.embedding),
        embedding_provider="some-other-model",
    )
    incident = make_incident(
        service="inventory",
        title="DeadlockDetected: deadlock detected",
        exception_type="psycopg.errors.DeadlockDetected",
        message="deadlock detected",
        culprit="inventory.reservations.release_stock",
    )

    hits = retrieval.similar_incidents(incident, k=20)

    assert _keys(hits, past_incidents)[0] == "past-deadlock"
    assert twin_incident.pk not in {hit.id for hit in hits}


def test_similar_incidents_with_no_history(db):
    incident = make_incident(service="payments", title="KeyError: 'amount'", exception_type="KeyError")

    assert retrieval.similar_incidents(incident) == []
