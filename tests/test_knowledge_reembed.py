"""`manage.py reembed` rebuilds vectors after a provider switch, and queries only compare one provider's vectors."""

from io import StringIO

import numpy as np
import pytest
from django.core.management import call_command
from django.utils import timezone
from pgvector.django import CosineDistance

from incidents.models import Incident
from knowledge.embeddings import (
    LocalEmbeddingProvider,
    current_provider_name,
    get_provider,
    normalize_rows,
    register_provider,
    unregister_provider,
)
from knowledge.models import IncidentSignature, KnowledgeEntry, KnowledgeKind, KnowledgePath
from knowledge.services import embed_incident_signature, write_knowledge

pytestmark = pytest.mark.django_db


class RotatedProvider:
    """A second provider for the test: the local vectors, rotated by one dimension (so not comparable)."""

    name = "test-rotated"
    dimension = 384

    def __init__(self):
        self.local = LocalEmbeddingProvider()

    def embed(self, texts):
        return normalize_rows(np.roll(self.local.embed(texts), 1, axis=1))

    def embed_one(self, text):
        return self.embed([text])[0].tolist()


@pytest.fixture
def rotated_provider():
    register_provider(RotatedProvider.name, RotatedProvider)
    yield RotatedProvider.name
    unregister_provider(RotatedProvider.name)


def make_entries(count):
    for number in range(count):
        write_knowledge(
            path_type=KnowledgePath.RUNBOOK_IMPORT,
            kind=KnowledgeKind.RUNBOOK,
            title=f"Runbook {number}: connection exhaustion",
            body="Check pg_stat_activity, then PgBouncer.",
            source_path=f"runbook-{number}.md",
        )


def make_signature():
    now = timezone.now()
    incident = Incident.objects.create(
        fingerprint="fp-1",
        fingerprint_version=1,
        fingerprint_strategy="default:error",
        title="OperationalError: too many connections",
        kind="error",
        source="generic",
        service="checkout",
        exception_type="OperationalError",
        first_seen=now,
        last_seen=now,
    )
    return embed_incident_signature(incident.pk)


def nearest(query: str):
    """A retrieval-style query: current provider's vectors only, nearest first."""
    provider = get_provider()
    return list(
        KnowledgeEntry.objects.filter(embedding_provider=provider.name)
        .order_by(CosineDistance("embedding", provider.embed_one(query)))
        .values_list("source_path", flat=True)
    )


def run_reembed(*args):
    out, err = StringIO(), StringIO()
    call_command("reembed", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_a_provider_switch_makes_rows_stale_and_reembed_only_stale_fixes_them(settings, rotated_provider):
    make_entries(5)
    make_signature()
    assert len(nearest("connection exhaustion")) == 5

    settings.QUENCH_EMBEDDING_PROVIDER = rotated_provider
    # Vectors of another provider are not comparable: queries must not see them at all.
    assert nearest("connection exhaustion") == []

    out, err = run_reembed("--only-stale", "--batch-size", "2")

    assert "Re-embedded 5 knowledge entries and 1 incident signatures with 'test-rotated'." in out
    assert "5/5 knowledge entries" in err and "1/1 incident signatures" in err
    assert set(KnowledgeEntry.objects.values_list("embedding_provider", flat=True)) == {rotated_provider}
    assert IncidentSignature.objects.get().embedding_provider == rotated_provider
    entry = KnowledgeEntry.objects.first()
    assert np.allclose(entry.embedding, get_provider().embed_one(f"{entry.title}\n{entry.body}"), atol=1e-3)  # halfvec
    assert len(nearest("connection exhaustion")) == 5

    # Nothing is stale any more.
    out, _ = run_reembed("--only-stale")
    assert "Re-embedded 0 knowledge entries and 0 incident signatures" in out


def test_only_stale_leaves_current_rows_alone_and_catches_unembedded_ones(settings, rotated_provider):
    make_entries(3)
    KnowledgeEntry.objects.filter(source_path="runbook-0.md").update(embedding_provider=rotated_provider)
    KnowledgeEntry.objects.filter(source_path="runbook-1.md").update(embedding=None, embedding_provider="")
    untouched = KnowledgeEntry.objects.get(source_path="runbook-2.md")

    out, _ = run_reembed("--only-stale")

    assert "Re-embedded 2 knowledge entries" in out
    assert set(KnowledgeEntry.objects.values_list("embedding_provider", flat=True)) == {current_provider_name()}
    assert KnowledgeEntry.objects.get(pk=untouched.pk).updated_at == untouched.updated_at


def test_a_full_reembed_rebuilds_every_row():
    make_entries(3)
    make_signature()
    out, _ = run_reembed()
    assert "Re-embedded 3 knowledge entries and 1 incident signatures with 'local-v2'." in out


def test_vectors_of_an_older_local_version_are_stale_until_reembedded():
    # "local" is what version 1 of the local provider stored; its features differ from today's.
    make_entries(2)
    make_signature()
    KnowledgeEntry.objects.update(embedding_provider="local")
    IncidentSignature.objects.update(embedding_provider="local")
    assert nearest("connection exhaustion") == []

    out, _ = run_reembed("--only-stale")

    assert "Re-embedded 2 knowledge entries and 1 incident signatures with 'local-v2'." in out
    assert len(nearest("connection exhaustion")) == 2
