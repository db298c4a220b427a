"""Content negotiation for documents that have one media type whatever the client asks."""

from rest_framework.negotiation import BaseContentNegotiation


class FixedContentNegotiation(BaseContentNegotiation):
    """Always the view's first renderer: WebFinger and NodeInfo clients send every kind of
    Accept header (or none), and a 406 would only make the node undiscoverable."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type
