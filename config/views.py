"""Pages of the project itself (not of an app)."""

from django.shortcuts import render
from django.views.decorators.http import require_GET


@require_GET
def landing(request):
    """`/`: what this server is and where to go (the admin, the API docs, health, metrics)."""
    return render(request, "landing.html")
