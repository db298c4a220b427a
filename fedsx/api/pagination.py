"""Cursor pagination on every list: stable under inserts (the logs grow while one pages).

The cursor orders by ``cursor_ordering`` on the view (default ``-id``): it must be unique
and indexed, e.g. ``-seq`` for an actor's log.
"""

from __future__ import annotations

from rest_framework.exceptions import NotFound
from rest_framework.pagination import CursorPagination

from fedsx.errors import FederationError


class CursorPage(CursorPagination):
    ordering = "-id"
    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 500

    def get_ordering(self, request, queryset, view) -> tuple[str, ...]:
        ordering = getattr(view, "cursor_ordering", self.ordering)
        return (ordering,) if isinstance(ordering, str) else tuple(ordering)

    def decode_cursor(self, request):
        try:
            return super().decode_cursor(request)
        except NotFound:
            # No page is at that cursor (DRF's 404, which any string may get: the schema
            # cannot tell a good cursor from a bad one), with a code of its own.
            raise FederationError(404, "invalid_cursor", "no page at this cursor") from None
