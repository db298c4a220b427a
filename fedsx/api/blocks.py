"""Blocked domains: their deliveries to our inboxes are refused before any fetch."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import viewsets

from fedsx.models import DomainBlock

from .serializers import DomainBlockSerializer
from .viewsets import ApiView


@extend_schema_view(
    list=extend_schema(summary="List blocked domains"),
    retrieve=extend_schema(summary="Show a domain block"),
    create=extend_schema(summary="Block a domain (and its subdomains)"),
    update=extend_schema(summary="Change a domain block"),
    partial_update=extend_schema(summary="Change part of a domain block"),
    destroy=extend_schema(summary="Unblock a domain"),
)
class DomainBlockViewSet(ApiView, viewsets.ModelViewSet):
    queryset = DomainBlock.objects.all()
    serializer_class = DomainBlockSerializer
