"""Serializers of the incident API."""

from rest_framework import serializers

from config.api.fields import StrictCharField
from incidents.models import Activity, Event, Incident


class IncidentListSerializer(serializers.ModelSerializer):
    class Meta:
        model = Incident
        fields = [
            "id",
            "title",
            "status",
            "severity",
            "category",
            "service",
            "environment",
            "kind",
            "source",
            "event_count",
            "regression_count",
            "first_seen",
            "last_seen",
            "fingerprint",
        ]
        read_only_fields = fields


class EventSerializer(serializers.ModelSerializer):
    class Meta:
        model = Event
        fields = [
            "id",
            "source",
            "source_id",
            "outcome",
            "status",
            "kind",
            "title",
            "message",
            "severity",
            "labels",
            "exception_type",
            "exception_value",
            "traceback",
            "frames",
            "path",
            "method",
            "trace_id",
            "url",
            "occurred_at",
            "received_at",
        ]
        read_only_fields = fields


class ActivitySerializer(serializers.ModelSerializer):
    class Meta:
        model = Activity
        fields = ["id", "kind", "message", "actor", "from_status", "to_status", "data", "created_at"]
        read_only_fields = fields


class FrequencySerializer(serializers.Serializer):
    last_1h = serializers.IntegerField(source="1h")
    last_24h = serializers.IntegerField(source="24h")
    last_7d = serializers.IntegerField(source="7d")


class IncidentDetailSerializer(IncidentListSerializer):
    frequency = serializers.SerializerMethodField()
    events = serializers.SerializerMethodField()
    timeline = ActivitySerializer(many=True, read_only=True)

    class Meta(IncidentListSerializer.Meta):
        fields = IncidentListSerializer.Meta.fields + [
            "message",
            "severity_reason",
            "alertname",
            "exception_type",
            "culprit",
            "route",
            "labels",
            "dedup_key",
            "fingerprint_version",
            "fingerprint_strategy",
            "fingerprint_components",
            "acknowledged_at",
            "resolved_at",
            "regressed_at",
            "frequency",
            "events",
            "timeline",
        ]
        read_only_fields = fields

    RECENT_EVENTS = 20

    def get_frequency(self, incident) -> dict:
        return FrequencySerializer(incident.frequency()).data

    def get_events(self, incident) -> list:
        return EventSerializer(incident.events.all()[: self.RECENT_EVENTS], many=True).data


class IncidentActionSerializer(serializers.Serializer):
    note = StrictCharField(required=False, allow_blank=True, max_length=2000)
