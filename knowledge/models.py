"""What Quench knows: knowledge entries, incident signatures (both embedded) and writes it could not make yet.

Every vector has `EMBEDDING_DIMENSION` dimensions whatever the provider, so one column
and one HNSW index serve them all. Vectors are stored as `halfvec` (16-bit floats): half the
space of `vector`, and pgvector computes halfvec distances with the CPU's vector
instructions, about seven times as fast per row here as `vector`'s; 16 bits keep three
significant digits, far below the differences retrieval ranks on. Vectors of different
providers are not comparable: every query filters on `embedding_provider` = the current
provider, and switching providers means running `manage.py reembed`.
"""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVectorField
from django.db import models
from django.db.models import F, Func, Q
from pgvector.django import HalfVectorField, HnswIndex

from knowledge.embeddings import EMBEDDING_DIMENSION

__all__ = [
    "EMBEDDING_DIMENSION",
    "DeadLetter",
    "IncidentSignature",
    "KnowledgeEntry",
    "KnowledgeKind",
    "KnowledgePath",
    "LexicalCorpus",
    "LexicalTerm",
    "ServiceVector",
]


class KnowledgeKind(models.TextChoices):
    RUNBOOK = "runbook", "Runbook"
    INCIDENT_SUMMARY = "incident_summary", "Incident summary"
    POSTMORTEM = "postmortem", "Postmortem"
    FIX = "fix", "Fix"
    NOTE = "note", "Note"


class KnowledgePath(models.TextChoices):
    """Which writer path made an entry; with the incident it is the entry's idempotency key."""

    RUNBOOK_IMPORT = "runbook_import", "Runbook import"
    INCIDENT_RESOLVED = "incident_resolved", "Incident resolved"
    APPROVAL_DECIDED = "approval_decided", "Approval decided"
    POSTMORTEM_PUBLISHED = "postmortem_published", "Postmortem published"
    PLAYBOOK_LEARNED = "playbook_learned", "Playbook learned"
    MANUAL = "manual", "Manual"


# The lexical side of retrieval (BM25F, knowledge.retrieval) reads generated columns: PostgreSQL
# keeps them current on every write, so no code path (admin, import, COPY, bulk update) can
# forget to refresh them. The SQL functions they call (migration 0005) split camelCase and
# snake_case words, drop punctuation and bare numbers, and stem with the 'english' dictionary
# (stop words out); each field's lexemes carry its weight label: A title, B tags, D body.
def _lexemes(*fields: str) -> Func:
    return Func(*(F(name) for name in fields), function="knowledge_lexemes", output_field=SearchVectorField())


def _term_count(field: str) -> Func:
    # A field's length for BM25's length normalization: its number of distinct lexemes.
    return Func(F(field), function="knowledge_term_count", output_field=models.IntegerField())


class KnowledgeEntry(models.Model):
    """One piece of knowledge (runbook, incident summary, postmortem, fix, note), embedded for retrieval.

    Written only through `knowledge.services.write_knowledge`, which upserts on
    (incident, path_type) — or on `source_path` for imported runbooks — so a retried
    task never doubles an entry.
    """

    title = models.CharField(max_length=300)
    body = models.TextField(help_text="Markdown.")
    kind = models.CharField(max_length=20, choices=KnowledgeKind.choices)
    path_type = models.CharField(max_length=40, choices=KnowledgePath.choices, default=KnowledgePath.MANUAL)
    source_path = models.CharField(
        max_length=500, blank=True, help_text="For imported runbooks: the file's path relative to the import folder."
    )
    incident = models.ForeignKey(
        "incidents.Incident",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="knowledge_entries",
    )
    # The id of a remediation.ApprovalRequest. A plain integer until that model exists
    # (a later issue); it then becomes a foreign key over the same column.
    approval_id = models.BigIntegerField(null=True, blank=True)
    services = ArrayField(models.CharField(max_length=200), default=list, blank=True)
    tags = ArrayField(models.CharField(max_length=100), default=list, blank=True)
    embedding = HalfVectorField(dimensions=EMBEDDING_DIMENSION, null=True, blank=True)
    embedding_provider = models.CharField(max_length=50, blank=True)
    embedding_dimension = models.PositiveIntegerField(null=True, blank=True)
    lexemes = models.GeneratedField(
        expression=_lexemes("title", "tags", "body"), output_field=SearchVectorField(), db_persist=True
    )
    title_length = models.GeneratedField(
        expression=_term_count("title"), output_field=models.IntegerField(), db_persist=True
    )
    body_length = models.GeneratedField(
        expression=_term_count("body"), output_field=models.IntegerField(), db_persist=True
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at"]
        verbose_name_plural = "knowledge entries"
        constraints = [
            # The writer's idempotency keys, enforced by the database so that two
            # deliveries of one task racing each other still end in one row.
            models.UniqueConstraint(
                fields=["incident", "path_type"],
                condition=Q(incident__isnull=False),
                name="one_knowledge_entry_per_incident_path",
            ),
            models.UniqueConstraint(
                fields=["source_path"],
                condition=~Q(source_path=""),
                name="one_knowledge_entry_per_source_path",
            ),
        ]
        indexes = [
            # Nearest-neighbour search by cosine distance (the vectors are unit length).
            # ef_construction 400, not pgvector's 64: a knowledge base is many near-copies of
            # a few dozen problems, and a short query's neighbours are often a small island
            # of them (the notes that share its words). With a build-time candidate list of
            # 64 those islands get few links from the rest of the graph and searches miss
            # them (recall@10 0.81-0.87 on bench/retrieval.py at ef_search 100); with 400,
            # 0.96-0.97 at the same query cost. The price is a build about three times as
            # long (about a minute for 100,000 entries on two cores, instead of 20-25 s).
            HnswIndex(
                name="knowledge_embedding_hnsw",
                fields=["embedding"],
                m=16,
                ef_construction=400,
                opclasses=["halfvec_cosine_ops"],
            ),
            # One graph per kind as well (partial indexes), for searches filtered to one kind:
            # through the whole graph, a filter to a kind whose entries lie away from the
            # query's neighbours (fixes, for an incident-shaped query) made the iterative scan
            # walk up to its tuple limit (p95 50 ms for the 20% of entries that are fixes, on
            # the benchmark); in the kind's own graph every neighbour qualifies (p95 12 ms).
            # A kind added later has none until a migration gives it one; its searches take
            # the whole graph meanwhile.
            *(
                HnswIndex(
                    name=f"kind_hnsw_{kind}",
                    fields=["embedding"],
                    m=16,
                    ef_construction=400,
                    opclasses=["halfvec_cosine_ops"],
                    condition=Q(kind=kind),
                )
                for kind in KnowledgeKind.values
            ),
            # A search filtered to kinds ranks their rows exactly (knowledge.retrieval), and
            # reads the vectors from this index alone (an index-only scan): the heap has one
            # or two entries per page, so reading 5,000 scattered rows from it cost 5,000 page
            # visits, ~10 ms on the 100,000-entry benchmark; packed in here, ~2 ms.
            models.Index(
                fields=["embedding_provider", "kind"], include=["id", "embedding"], name="knowledge_kind_vectors"
            ),
            # OR-matching of a query's rarer terms (BM25 candidates), `lexemes @@ 'a' | 'b'`.
            GinIndex(fields=["lexemes"], name="knowledge_lexemes_gin"),
            # Searches filtered to a service (`services && ARRAY[...]`): the lexical side's
            # candidates under the filter (the semantic side reads `ServiceVector`, or the HNSW
            # graph for a filter too wide to rank exactly).
            GinIndex(fields=["services"], name="knowledge_services_gin"),
            models.Index(fields=["kind"], name="knowledge_kind"),
            # `reembed --only-stale` and every retrieval query filter on the provider.
            models.Index(fields=["embedding_provider"], name="knowledge_provider"),
        ]

    def __str__(self) -> str:
        return self.title


class IncidentSignature(models.Model):
    """The embedded signature of an incident, for "similar incidents" search.

    Kept out of `incidents_incident` on purpose: that row is updated on every event, and
    a 384-float vector plus an HNSW index entry on it would make each of those updates
    rewrite the vector and its index instead of a small in-place (HOT) update.
    `text` is what was embedded: exception type, normalized message, in-app frames,
    service, alert name, labels and title.
    """

    incident = models.OneToOneField("incidents.Incident", on_delete=models.CASCADE, related_name="signature")
    text = models.TextField()
    embedding = HalfVectorField(dimensions=EMBEDDING_DIMENSION)
    embedding_provider = models.CharField(max_length=50)
    lexemes = models.GeneratedField(expression=_lexemes("text"), output_field=SearchVectorField(), db_persist=True)
    body_length = models.GeneratedField(
        expression=_term_count("text"), output_field=models.IntegerField(), db_persist=True
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            HnswIndex(
                name="incident_signature_hnsw",
                fields=["embedding"],
                m=16,
                ef_construction=64,
                opclasses=["halfvec_cosine_ops"],
            ),
            GinIndex(fields=["lexemes"], name="incident_signature_lexemes_gin"),
            models.Index(fields=["embedding_provider"], name="incident_signature_provider"),
        ]

    def __str__(self) -> str:
        return f"signature of incident #{self.incident_id}"


class DeadLetter(models.Model):
    """A write that failed after every retry, kept so that nothing is lost.

    `payload` holds the original call's arguments; the scheduled reconciler
    (`knowledge.tasks.reconcile_dead_letters`) replays unresolved rows and marks them
    resolved once the write succeeds.
    """

    operation = models.CharField(max_length=50, help_text='What failed, e.g. "knowledge_write".')
    payload = models.JSONField(default=dict)
    reason = models.TextField()
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    last_attempt_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # The reconciler only ever reads the unresolved rows, oldest first.
            models.Index(
                fields=["created_at"],
                condition=Q(resolved_at__isnull=True),
                name="dead_letter_unresolved",
            ),
        ]

    def __str__(self) -> str:
        state = "resolved" if self.resolved_at else f"unresolved after {self.attempts} attempt(s)"
        return f"{self.operation} #{self.pk} ({state})"


class LexicalCorpus(models.Model):
    """The collection statistics BM25 needs for one searchable table: documents and total field lengths.

    Kept current by statement-level triggers on the table (migration 0005), in the writing
    transaction, so the average field lengths are never stale; `name` is "knowledge" or
    "signatures".
    """

    name = models.CharField(max_length=20, primary_key=True)
    documents = models.BigIntegerField(default=0)
    title_length = models.BigIntegerField(default=0, help_text="Sum of the documents' title lengths (lexemes).")
    body_length = models.BigIntegerField(default=0, help_text="Sum of the documents' body lengths (lexemes).")

    class Meta:
        verbose_name_plural = "lexical corpora"

    def __str__(self) -> str:
        return f"{self.name}: {self.documents} documents"


class LexicalTerm(models.Model):
    """How many documents of a corpus contain a lexeme (its document frequency), for BM25's idf.

    Maintained by the same triggers as `LexicalCorpus`: an insert, update or delete of a
    row adds or subtracts its distinct lexemes in the same statement, so retrieval reads a
    query's document frequencies with one index lookup per term instead of counting matches.
    """

    pk = models.CompositePrimaryKey("corpus", "term")
    corpus = models.CharField(max_length=20)
    term = models.TextField()
    documents = models.IntegerField()

    def __str__(self) -> str:
        return f"{self.term} in {self.documents} {self.corpus} documents"


class ServiceVector(models.Model):
    """An entry's vector once per service it names, packed by service: what searches filtered to a service rank.

    Written only by a trigger on `KnowledgeEntry` (migration 0006), in the writing statement,
    so it can never disagree with the entries: one row per (entry, service) of every entry
    with a vector. A search filtered to services ranks their entries exactly from the index
    `knowledge_service_vectors` alone (an index-only scan over rows stored together), where
    the entries' own rows are scattered one or two per heap page (`services` is an array,
    so no B-tree on the entries can hold them by service).
    """

    # No foreign-key constraint: the trigger that deletes an entry's rows runs after the
    # entry's delete, where a constraint would already have refused it.
    entry = models.ForeignKey(
        KnowledgeEntry, on_delete=models.DO_NOTHING, db_constraint=False, related_name="service_vectors"
    )
    service = models.CharField(max_length=200)
    embedding_provider = models.CharField(max_length=50)
    kind = models.CharField(max_length=20, choices=KnowledgeKind.choices)
    embedding = HalfVectorField(dimensions=EMBEDDING_DIMENSION)

    class Meta:
        indexes = [
            models.Index(
                fields=["service", "embedding_provider"],
                include=["kind", "entry", "embedding"],
                name="knowledge_service_vectors",
            ),
        ]

    def __str__(self) -> str:
        return f"vector of entry #{self.entry_id} for {self.service}"
