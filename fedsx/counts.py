"""Counts of related rows as annotations, for lists that show them per row (hosts with
their deliveries, flows with their instances) without a query per row."""

from __future__ import annotations

from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce


def count_of(related: QuerySet, field: str, outer: str) -> Coalesce:
    """How many rows of ``related`` have ``field`` equal to the outer row's ``outer``: one
    correlated subquery on ``field`` (keep it indexed), 0 when none."""
    return Coalesce(
        Subquery(
            related.filter(**{field: OuterRef(outer)})
            .order_by()
            .values(field)
            .annotate(n=Count("id"))
            .values("n"),
            output_field=IntegerField(),
        ),
        0,
    )
