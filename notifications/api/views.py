"""The notifications API (staff, read-only plus resend): what each channel was sent and how it went."""

from __future__ import annotations

from django.db.models import Prefetch
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import BasePermission
from rest_framework.response import Response

from config.api.authentication import STAFF_AUTHENTICATION
from config.api.params import choice_param, id_param
from notifications import services
from notifications.api.serializers import ChannelSerializer, NotificationSerializer
from notifications.choices import NotificationEvent, NotificationStatus
from notifications.models import Channel, Delivery, Notification


class CanView(BasePermission):
    """Staff with the model's view permission (resend needs change_notification)."""

    message = "You need to be a staff user with permission to view notifications."

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_active and user.is_staff):
            return False
        codename = "change_notification" if getattr(view, "action", "") == "resend" else view.view_permission
        return user.has_perm(f"notifications.{codename}")


class ChannelViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Notification channels with their routing; secrets are masked."""

    authentication_classes = STAFF_AUTHENTICATION
    permission_classes = [CanView]
    view_permission = "view_channel"
    serializer_class = ChannelSerializer
    queryset = Channel.objects.order_by("name")


@extend_schema(
    parameters=[
        OpenApiParameter(
            "status", str, enum=NotificationStatus.values, description="Only this status (dead: gave up)."
        ),
        OpenApiParameter("event", str, enum=NotificationEvent.values),
        OpenApiParameter("channel", int, description="Only this channel's."),
    ]
)
class NotificationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Notifications, newest first, each with every delivery attempt."""

    authentication_classes = STAFF_AUTHENTICATION
    permission_classes = [CanView]
    view_permission = "view_notification"
    serializer_class = NotificationSerializer

    def get_queryset(self):
        queryset = Notification.objects.select_related("channel").prefetch_related(
            Prefetch("deliveries", queryset=Delivery.objects.order_by("attempt"))
        )
        if self.action != "list":
            return queryset
        if state := choice_param(self.request, "status", NotificationStatus.values):
            queryset = queryset.filter(status=state)
        if event := choice_param(self.request, "event", NotificationEvent.values):
            queryset = queryset.filter(event=event)
        if (channel := id_param(self.request, "channel")) is not None:
            queryset = queryset.filter(channel_id=channel)
        return queryset.order_by("-created_at")

    @extend_schema(
        request=None,
        responses={
            202: NotificationSerializer,
            409: OpenApiResponse(description="Not dead or skipped: nothing to resend."),
        },
    )
    @action(detail=True, methods=["post"])
    def resend(self, request, pk=None):
        """Send a dead (or skipped) notification again with a fresh attempt budget."""
        notification = self.get_object()
        if not services.resend(notification.pk):
            return Response(
                {
                    "error": "Only a dead or skipped notification can be resent.",
                    "detail": {"status": notification.status},
                },
                status=status.HTTP_409_CONFLICT,
            )
        notification.refresh_from_db()
        return Response(self.get_serializer(notification).data, status=status.HTTP_202_ACCEPTED)
