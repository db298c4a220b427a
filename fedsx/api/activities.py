"""Activities as stored: listed by type, actor and time; one with its JSON."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins

from fedsx.models import Activity

from .filters import ActivityFilter
from .serializers import ActivityDetailSerializer, ActivitySerializer
from .viewsets import ApiViewSet


@extend_schema_view(
    list=extend_schema(summary="List activities, newest first (filter by type, actor, time)"),
    retrieve=extend_schema(summary="Show an activity with its JSON"),
)
class ActivityViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    queryset = Activity.objects.all()
    filterset_class = ActivityFilter

    def get_queryset(self):
        if self.action == "list":
            return Activity.objects.defer("payload")  # the JSON only on its own page
        return Activity.objects.all()

    def get_serializer_class(self):
        return ActivitySerializer if self.action == "list" else ActivityDetailSerializer
