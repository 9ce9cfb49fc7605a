"""Serializers of the knowledge API: the query parameters it accepts and the hits it returns."""

from __future__ import annotations

from rest_framework import serializers

from knowledge.models import KnowledgeKind
from knowledge.retrieval import MATCHED_CHOICES

MAX_K = 50


def _comma_list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


class SimilarParamsSerializer(serializers.Serializer):
    """`?k=` of the similar-incidents endpoint."""

    k = serializers.IntegerField(min_value=1, max_value=MAX_K, default=5)


class SearchParamsSerializer(serializers.Serializer):
    """`?q=&k=&kind=&service=` of the search endpoint; kind and service take comma-separated values."""

    q = serializers.CharField(max_length=2000, trim_whitespace=True)
    k = serializers.IntegerField(min_value=1, max_value=MAX_K, default=10)
    kind = serializers.CharField(required=False, allow_blank=True)
    service = serializers.CharField(required=False, allow_blank=True)

    def validate_kind(self, value: str) -> list[str]:
        kinds = _comma_list(value)
        unknown = [kind for kind in kinds if kind not in KnowledgeKind.values]
        if unknown:
            raise serializers.ValidationError(
                f"Unknown kind(s) {', '.join(unknown)}; choose from {', '.join(KnowledgeKind.values)}."
            )
        return kinds

    def validate_service(self, value: str) -> list[str]:
        return _comma_list(value)


class _HitSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    score = serializers.FloatField(
        help_text="Calibrated relevance, 0–1: about how likely this is what was searched for (1 for an identical "
        "past incident)."
    )
    matched = serializers.ChoiceField(
        choices=MATCHED_CHOICES,
        help_text="Which side found it: lexical (shares query terms), semantic (a near neighbour by embedding), "
        "both, same_error (same exception type and message, raised elsewhere) or identical (same fingerprint, or "
        "same exception and culprit).",
    )
    bm25 = serializers.FloatField(allow_null=True, help_text="Raw BM25F score, when it shares query terms.")
    similarity = serializers.FloatField(allow_null=True, help_text="Cosine similarity of the embeddings.")


class KnowledgeHitSerializer(_HitSerializer):
    kind = serializers.ChoiceField(choices=KnowledgeKind.choices)
    services = serializers.ListField(child=serializers.CharField(), source="object.services")
    tags = serializers.ListField(child=serializers.CharField(), source="object.tags")
    source_path = serializers.CharField(source="object.source_path")
    incident = serializers.IntegerField(source="object.incident_id", allow_null=True)
    body = serializers.CharField(source="object.body")
    updated_at = serializers.DateTimeField(source="object.updated_at")


class SimilarIncidentSerializer(_HitSerializer):
    status = serializers.CharField(source="object.status")
    severity = serializers.CharField(source="object.severity")
    service = serializers.CharField(source="object.service")
    category = serializers.CharField(source="object.category")
    last_seen = serializers.DateTimeField(source="object.last_seen")
    resolved_at = serializers.DateTimeField(source="object.resolved_at", allow_null=True)


class KnowledgeSearchResponseSerializer(serializers.Serializer):
    query = serializers.CharField()
    k = serializers.IntegerField()
    results = KnowledgeHitSerializer(many=True)


class SimilarIncidentsResponseSerializer(serializers.Serializer):
    incident = serializers.IntegerField()
    k = serializers.IntegerField()
    results = SimilarIncidentSerializer(many=True)
