"""Rebuild knowledge and incident-signature vectors with the current embedding provider."""

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q

from knowledge.embeddings import get_provider
from knowledge.management.progress import ProgressBar
from knowledge.models import IncidentSignature, KnowledgeEntry
from knowledge.services import reembed_entries, reembed_signatures


class Command(BaseCommand):
    help = (
        "Re-embed every knowledge entry and incident signature with the provider QUENCH_EMBEDDING_PROVIDER "
        "names (run it after switching providers: vectors of two providers do not compare)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--only-stale",
            action="store_true",
            help="Only rows embedded by another provider (or not embedded at all).",
        )
        parser.add_argument("--batch-size", type=int, default=256, help="Rows embedded and saved together.")

    def handle(self, *args, only_stale, batch_size, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        provider = get_provider()
        # The old vectors and search vectors are never read here: leave them in the database.
        entries = KnowledgeEntry.objects.defer("embedding", "lexemes")
        signatures = IncidentSignature.objects.defer("embedding", "lexemes")
        if only_stale:
            entries = entries.filter(~Q(embedding_provider=provider.name) | Q(embedding__isnull=True))
            signatures = signatures.exclude(embedding_provider=provider.name)
        self.stderr.write(f"Embedding with {provider.name!r} ({provider.dimension} dimensions).")
        entry_count = self._run(entries, reembed_entries, batch_size, "knowledge entries")
        signature_count = self._run(signatures, reembed_signatures, batch_size, "incident signatures")
        self.stdout.write(
            f"Re-embedded {entry_count} knowledge entries and {signature_count} incident signatures "
            f"with {provider.name!r}."
        )

    def _run(self, queryset, reembed, batch_size: int, label: str) -> int:
        total = queryset.count()
        bar = ProgressBar(self.stderr, total, label)
        done = 0
        last_pk = 0
        # Keyset pagination by primary key: rows leave the stale filter as they are
        # re-embedded, so offsets would skip rows; pk order never does.
        while True:
            batch = list(queryset.filter(pk__gt=last_pk).order_by("pk")[:batch_size])
            if not batch:
                break
            done += reembed(batch)
            last_pk = batch[-1].pk
            bar.advance(len(batch))
        bar.finish()
        return done
