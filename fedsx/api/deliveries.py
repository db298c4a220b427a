"""Outbound deliveries (retry, cancel) and the hosts they go to (health, clear)."""

from __future__ import annotations

from django.db import transaction
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from fedsx import hosts
from fedsx.models import Delivery, Host

from .filters import DeliveryFilter, HostFilter
from .schema import errors
from .serializers import (
    CancelledSerializer,
    ClearedSerializer,
    DeliverySerializer,
    HostSerializer,
    RetriedSerializer,
)
from .viewsets import ApiViewSet


@extend_schema_view(
    list=extend_schema(summary="List deliveries, newest first (filter by status, host)"),
    retrieve=extend_schema(summary="Show a delivery"),
    retry=extend_schema(
        summary="Send a delivery again now (also a failed or cancelled one)",
        request=None,
        responses={200: RetriedSerializer, **errors(409)},
    ),
    cancel=extend_schema(
        summary="Stop trying a pending or held delivery",
        request=None,
        responses={200: CancelledSerializer, **errors(409)},
    ),
)
class DeliveryViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    queryset = Delivery.objects.select_related("activity").defer("activity__payload")
    serializer_class = DeliverySerializer
    filterset_class = DeliveryFilter
    action_permissions = {"retry": "change", "cancel": "change"}

    @action(detail=True, methods=["post"])
    def retry(self, request, pk: str) -> Response:
        from fedsx.delivery import held_hosts, retry_one

        delivery = self.get_object()
        ids = retry_one(delivery)
        held = held_hosts(Delivery.objects.filter(pk__in=ids))
        return Response(RetriedSerializer({"retried": ids, "held_hosts": held}).data)

    @action(detail=True, methods=["post"])
    def cancel(self, request, pk: str) -> Response:
        from fedsx.delivery import cancel_one

        delivery = self.get_object()
        cancel_one(delivery)
        return Response(CancelledSerializer({"cancelled": [delivery.pk]}).data)


HOST_NAME = OpenApiParameter("host", str, OpenApiParameter.PATH, description="host or host:port")


@extend_schema_view(
    list=extend_schema(summary="List remote hosts with their breaker state"),
    retrieve=extend_schema(summary="Show a host's health", parameters=[HOST_NAME]),
    clear=extend_schema(
        summary="Clear a host: close its breaker and release its held deliveries",
        parameters=[HOST_NAME],
        request=None,
        responses={200: ClearedSerializer},
    ),
)
class HostViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    queryset = hosts.with_delivery_counts(Host.objects.all(), *hosts.HOST_COUNTED)
    serializer_class = HostSerializer
    filterset_class = HostFilter
    lookup_field = "host"
    lookup_value_regex = r"[^/]+"
    action_permissions = {"clear": "change"}

    def get_object(self) -> Host:
        name = hosts.normalize_host(self.kwargs["host"])
        # Clearing needs the row only, not its delivery counts (two subqueries).
        rows = Host.objects.all() if self.action == "clear" else self.get_queryset()
        found = rows.filter(host=name).first()
        if found is None:
            raise NotFound(f"no host {self.kwargs['host']!r} is known")
        return found

    @action(detail=True, methods=["post"])
    def clear(self, request, host: str) -> Response:
        name = self.get_object().host
        with transaction.atomic():
            released = hosts.clear(name)
        if released is None:  # gone between the look and the clear
            raise NotFound(f"no host {host!r} is known")
        data = {"host": name, "state": Host.State.OK, "released": released}
        return Response(ClearedSerializer(data).data)
