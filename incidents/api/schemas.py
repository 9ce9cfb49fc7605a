"""OpenAPI descriptions of payloads that are validated elsewhere (the source adapters)."""

from rest_framework import serializers


class GenericEventSerializer(serializers.Serializer):
    """The generic JSON event (validated by incidents.sources.generic; this class documents it)."""

    service = serializers.CharField(max_length=200, help_text="The service that has the problem (required).")
    environment = serializers.CharField(required=False, help_text="e.g. production, staging.")
    title = serializers.CharField(required=False, help_text="One line; `title` or `message` is required.")
    message = serializers.CharField(required=False)
    severity = serializers.ChoiceField(
        choices=["critical", "error", "warning", "info", "P0", "P1", "P2", "P3"], required=False
    )
    exception_type = serializers.CharField(required=False, help_text="e.g. KeyError, requests.exceptions.Timeout")
    traceback = serializers.CharField(required=False, help_text="The full Python traceback text.")
    path = serializers.CharField(required=False, help_text="URL path of the failing request.")
    method = serializers.CharField(required=False, help_text="HTTP method of the failing request.")
    trace_id = serializers.CharField(required=False)
    labels = serializers.DictField(child=serializers.CharField(), required=False)
    occurred_at = serializers.DateTimeField(required=False, help_text="ISO 8601; UTC when no offset is given.")
    dedup_key = serializers.CharField(
        required=False, max_length=255, help_text="Your own grouping key; overrides Quench's fingerprint."
    )
    status = serializers.ChoiceField(choices=["firing", "resolved"], required=False, default="firing")
    event_id = serializers.CharField(required=False, help_text="Unique id of this occurrence, for retry safety.")
