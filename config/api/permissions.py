"""Who may use the management API."""

from rest_framework.permissions import BasePermission


class IsEngineer(BasePermission):
    """Staff users with the incident permissions: view to read, change to act."""

    message = "You need to be a staff user with permission on incidents."

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and getattr(user, "is_authenticated", False) and getattr(user, "is_staff", False)):
            return False
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return user.has_perm("incidents.view_incident")
        return user.has_perm("incidents.change_incident")
