"""Read-only shapes of channels (secrets masked) and notifications with their delivery attempts."""

from rest_framework import serializers

from notifications.models import Channel, Delivery, Notification


class ChannelSerializer(serializers.ModelSerializer):
    config = serializers.SerializerMethodField(help_text="Secrets shown as ******** or env:NAME, never their value.")

    class Meta:
        model = Channel
        fields = [
            "id",
            "name",
            "kind",
            "enabled",
            "disabled_reason",
            "disabled_at",
            "config",
            "min_severity",
            "services",
            "events",
            "is_escalation",
        ]

    def get_config(self, channel: Channel) -> dict:
        return channel.public_config()


class DeliverySerializer(serializers.ModelSerializer):
    class Meta:
        model = Delivery
        fields = [
            "attempt",
            "status",
            "response_code",
            "response_body",
            "error",
            "duration_ms",
            "next_retry_at",
            "created_at",
        ]


class NotificationSerializer(serializers.ModelSerializer):
    channel = serializers.CharField(source="channel.name")
    deliveries = DeliverySerializer(many=True, read_only=True)

    class Meta:
        model = Notification
        fields = [
            "id",
            "event",
            "channel",
            "channel_id",
            "incident_id",
            "approval_id",
            "status",
            "attempts",
            "next_attempt_at",
            "sent_at",
            "last_error",
            "created_at",
            "deliveries",
        ]
