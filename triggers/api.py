"""Triggers at ``/api/v1/triggers/`` and their firings at ``/api/v1/firings/``.

A trigger is validated as the admin and ``manage.py triggers add`` validate it (the model's
``clean``), and its flow must be registered. Enabling, disabling and testing against an
activity are actions on a trigger; firings are read-only, written by the pipeline only.
"""

from __future__ import annotations

from django import forms
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from fedsx.api.viewsets import ApiViewSet
from flows.store import MAX_ID

from .explain import explain
from .models import Firing, Trigger
from .serializers import (
    ExplanationSerializer,
    FiringSerializer,
    TriggerSerializer,
    TriggerTestSerializer,
)


def register(router) -> None:
    router.register("triggers", TriggerViewSet, basename="trigger")
    router.register("firings", FiringViewSet, basename="firing")


class TriggerFilter(filters.FilterSet):
    type = filters.CharFilter(field_name="activity_type", help_text="Only triggers on this type.")
    flow = filters.CharFilter(field_name="flow_name", help_text="Only triggers starting this flow.")
    enabled = filters.BooleanFilter(help_text="Only enabled (true) or disabled (false) triggers.")

    class Meta:
        model = Trigger
        fields = ["type", "flow", "enabled"]


@extend_schema_view(
    list=extend_schema(summary="List triggers", description="Oldest first."),
    retrieve=extend_schema(summary="Show a trigger", responses={200: TriggerSerializer}),
    create=extend_schema(
        summary="Add a trigger",
        description="Validated as `manage.py triggers add` validates it: the guard's syntax "
        "(400 naming `guard`), a registered flow (400 naming `flow`), local actors in scope "
        "(`actors`), and no other trigger with exactly this spec.",
    ),
    update=extend_schema(summary="Replace a trigger's spec, label and switch"),
    partial_update=extend_schema(
        summary="Edit a trigger",
        description="Changing the spec (type, scopes, guard, flow) makes it a new trigger: "
        "its `trigger_cid` changes, so it may fire again for activities already seen.",
    ),
    destroy=extend_schema(
        summary="Delete a trigger", description="Its firings stay, with `trigger` null."
    ),
)
class TriggerViewSet(
    ApiViewSet,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
):
    queryset = Trigger.objects.all()
    serializer_class = TriggerSerializer
    filterset_class = TriggerFilter
    cursor_ordering = "id"
    action_permissions = {"enable": "change", "disable": "change", "test": "view"}

    @extend_schema(summary="Enable a trigger", request=None, responses={200: TriggerSerializer})
    @action(detail=True, methods=["post"])
    def enable(self, request: Request, pk: str | None = None) -> Response:
        return self._switch(enabled=True)

    @extend_schema(summary="Disable a trigger", request=None, responses={200: TriggerSerializer})
    @action(detail=True, methods=["post"])
    def disable(self, request: Request, pk: str | None = None) -> Response:
        return self._switch(enabled=False)

    def _switch(self, *, enabled: bool) -> Response:
        trigger = self.get_object()
        trigger.switch(enabled)
        return Response(TriggerSerializer(trigger).data)

    @extend_schema(
        summary="Test a trigger against an activity",
        description="The scope and guard verdicts for an activity (given whole, or a stored "
        "one by `activity_id`) arriving in a local actor's inbox. Nothing fires, nothing is "
        "written.",
        request=TriggerTestSerializer,
        responses={200: ExplanationSerializer},
    )
    @action(detail=True, methods=["post"])
    def test(self, request: Request, pk: str | None = None) -> Response:
        trigger = self.get_object()
        asked = TriggerTestSerializer(data=request.data, context={"trigger": trigger})
        asked.is_valid(raise_exception=True)
        given = asked.validated_data
        verdict = explain(trigger, given["activity"], given["recipient"])
        return Response(ExplanationSerializer(verdict).data)


class IdFilter(filters.NumberFilter):
    """A whole number (NumberFilter takes decimals, and 1.5 would match id 1)."""

    field_class = forms.IntegerField


class FiringFilter(filters.FilterSet):
    outcome = filters.ChoiceFilter(choices=Firing.Outcome.choices, help_text="The outcome.")
    trigger = IdFilter(
        field_name="trigger_id", min_value=1, max_value=MAX_ID, help_text="A trigger's id."
    )
    actor = filters.CharFilter(
        field_name="actor__username", help_text="The local actor (username) whose inbox it was."
    )

    class Meta:
        model = Firing
        fields = ["outcome", "trigger", "actor"]


@extend_schema_view(
    list=extend_schema(
        summary="List firings",
        description="Newest first: one trigger fired for one activity in one local actor's "
        "inbox, with the outcome when it fired.",
    ),
    retrieve=extend_schema(summary="Show a firing"),
)
class FiringViewSet(ApiViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin):
    queryset = Firing.objects.select_related("actor")
    serializer_class = FiringSerializer
    filterset_class = FiringFilter
    cursor_ordering = "-id"
