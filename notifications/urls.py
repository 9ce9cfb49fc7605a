"""The action-link confirmation page, mounted under /admin/notifications/ (see config/urls.py)."""

from django.contrib import admin
from django.urls import path

from notifications.views import action_view

urlpatterns = [
    path("action/<str:token>/", admin.site.admin_view(action_view), name="notifications_action"),
]
