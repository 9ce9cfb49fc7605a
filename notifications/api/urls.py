from rest_framework.routers import SimpleRouter

from notifications.api.views import ChannelViewSet, NotificationViewSet

router = SimpleRouter(trailing_slash=False)
router.register("notification-channels", ChannelViewSet, basename="notification-channel")
router.register("notifications", NotificationViewSet, basename="notification")

urlpatterns = router.urls
