"""How people (not monitoring integrations) authenticate to the management API."""

from rest_framework.authentication import BasicAuthentication, SessionAuthentication

# Basic comes first on purpose: DRF answers an unauthenticated request with the first
# class's `authenticate_header`. Basic's makes it `401` + `WWW-Authenticate: Basic realm="api"`,
# which tells a client what to send; SessionAuthentication has none, which makes it a bare 403.
# A logged-in admin's browser session still works (the second class), with its CSRF check.
STAFF_AUTHENTICATION = (BasicAuthentication, SessionAuthentication)
