"""Content negotiation for endpoints that speak one format whatever the client's Accept header."""

from rest_framework.negotiation import BaseContentNegotiation


class OneFormat(BaseContentNegotiation):
    """The view's first renderer, always: a load balancer or scraper with an odd Accept header
    still gets /healthz's JSON and /metrics' text rather than a 406 (as DRF's docs suggest)."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type
