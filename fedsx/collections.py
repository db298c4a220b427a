"""Paged ``OrderedCollection`` documents over a queryset, newest first, by a cursor."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db.models import QuerySet

from . import media
from .conf import fedsx_settings


def ordered_collection(
    url: str,
    queryset: QuerySet,
    *,
    cursor_field: str,
    item: Callable[[Any], Any],
    page: bool,
    before: int | None,
) -> dict[str, Any]:
    """The collection itself, or (``page``) one page of it below the cursor ``before``.

    Pages are keyed by a cursor (the ``cursor_field`` of the last item shown), not an
    offset, so a page stays stable while new items arrive at the top.
    """
    if not page:
        return {
            "@context": media.AS_CONTEXT,
            "id": url,
            "type": "OrderedCollection",
            "totalItems": queryset.count(),
            "first": f"{url}?page=true",
        }
    size = fedsx_settings.COLLECTION_PAGE_SIZE
    rows = queryset.order_by(f"-{cursor_field}")
    if before is not None:
        rows = rows.filter(**{f"{cursor_field}__lt": before})
    rows = list(rows[: size + 1])
    more, rows = len(rows) > size, rows[:size]
    page_id = f"{url}?page=true" + (f"&before={before}" if before is not None else "")
    doc: dict[str, Any] = {
        "@context": media.AS_CONTEXT,
        "id": page_id,
        "type": "OrderedCollectionPage",
        "partOf": url,
        "orderedItems": [item(row) for row in rows],
    }
    if more:
        doc["next"] = f"{url}?page=true&before={getattr(rows[-1], cursor_field)}"
    return doc
