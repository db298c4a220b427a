"""Flow definitions at ``/api/v1/flows/`` and instances at ``/api/v1/flow-instances/``.

Every operation on an instance goes through ``flows.store``, as the admin and ``manage.py
flows`` do. An instance is started by ``POST /api/v1/flow-instances/`` with the flow's name
and input; ``resume``, ``cancel``, ``retry`` and ``wake`` are actions on it. The store's
refusals (``moved_on``, ``not_suspended``, ``already_done`` …) answer 409 with their code.
An operation the store carried out answers the outcome, even when the flow then crashed
(``status: crashed``, ``error: flow_crashed``): the instance moved, the call did not fail.
"""

from __future__ import annotations

from django.urls import reverse
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from fedsx.api.exceptions import Conflict
from fedsx.api.schema import errors
from fedsx.api.viewsets import ApiViewSet
from fedsx.errors import not_found

from . import store
from .definitions import with_instance_counts
from .models import FlowDefinition, FlowInstance
from .serializers import (
    FlowDefinitionSerializer,
    FlowInstanceDetailSerializer,
    FlowInstanceSerializer,
    FlowLogEntrySerializer,
    OutcomeSerializer,
    ResumeSerializer,
    StartSerializer,
)

Status = FlowInstance.Status


def register(router) -> None:
    router.register("flows", FlowDefinitionViewSet, basename="flow")
    router.register("flow-instances", FlowInstanceViewSet, basename="flow-instance")


def answered(instance_id: int | None, outcome: store.Outcome, **kwargs) -> Response:
    """The outcome of a store call, or its refusal as an error."""
    if outcome.status == "error":
        raise refusal(outcome)
    return Response(OutcomeSerializer.of(instance_id, outcome), **kwargs)


def refusal(outcome: store.Outcome) -> Exception:
    match outcome.error:
        case "no_such_instance":
            return not_found(outcome.detail)
        case "not_json":  # the serializers check first; kept for a value they let through
            return serializers.ValidationError({"value": [outcome.detail]})
    return Conflict(outcome.error, outcome.detail)


@extend_schema_view(
    list=extend_schema(
        summary="List flow definitions",
        description="Flows as last synced by `manage.py flows register`, by name, with their "
        "instances counted by status.",
    ),
    retrieve=extend_schema(summary="Show a flow definition"),
)
class FlowDefinitionViewSet(ApiViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin):
    queryset = with_instance_counts(FlowDefinition.objects.all())
    serializer_class = FlowDefinitionSerializer
    lookup_field = "name"
    lookup_value_regex = "[^/]+"
    cursor_ordering = "name"

    def get_object(self) -> FlowDefinition:
        name = self.kwargs[self.lookup_field]
        if "\x00" in name:  # no flow has one, and Postgres refuses to look for it
            raise not_found(f"no flow definition {name!r}")
        return super().get_object()


class FlowInstanceFilter(filters.FilterSet):
    flow = filters.CharFilter(field_name="flow_name", help_text="Only instances of this flow.")
    status = filters.ChoiceFilter(choices=Status.choices, help_text="Only in this status.")
    waiting = filters.ChoiceFilter(
        choices=FlowInstance.Waiting.choices,
        method="filter_waiting",
        help_text="Only suspended instances waiting for this: an operator's resume, an "
        "activity or a timer.",
    )
    tag = filters.CharFilter(field_name="waiting_tag", help_text="Only waiting on this tag.")

    class Meta:
        model = FlowInstance
        fields = ["flow", "status", "waiting", "tag"]

    def filter_waiting(self, queryset, name: str, value: str):
        return queryset.filter(status=Status.SUSPENDED, waiting_kind=value)


OUTCOME = {200: OutcomeSerializer}
REFUSED = errors(409)


@extend_schema_view(
    list=extend_schema(summary="List flow instances", description="Newest first."),
    retrieve=extend_schema(
        summary="Show a flow instance with its log",
        description="Where it stands and its replay log: the newest "
        f"{FlowInstanceDetailSerializer.LOG_LIMIT} entries (`log_hidden` counts the older "
        "ones; `{id}/log/` pages through all).",
    ),
    create=extend_schema(
        summary="Start a flow instance",
        description="Creates an instance of the registered flow `flow` with `input` and "
        "drives it until it is done or waits (as `manage.py flows start`). 201 with the "
        "outcome, also when the flow crashed at once (`status: crashed`).",
        request=StartSerializer,
        responses={201: OutcomeSerializer},
    ),
)
class FlowInstanceViewSet(
    ApiViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin
):
    queryset = FlowInstance.objects.all()
    filterset_class = FlowInstanceFilter
    cursor_ordering = "-id"
    # Operating an instance is changing it, as on its admin page.
    action_permissions = {
        "resume": "change",
        "cancel": "change",
        "retry": "change",
        "wake": "change",
        "log": "view",
    }

    def get_serializer_class(self):
        return {
            "retrieve": FlowInstanceDetailSerializer,
            "create": StartSerializer,
            "resume": ResumeSerializer,
            "log": FlowLogEntrySerializer,
        }.get(self.action, FlowInstanceSerializer)

    def create(self, request: Request, *args, **kwargs) -> Response:
        asked = StartSerializer(data=request.data)
        asked.is_valid(raise_exception=True)
        pk, outcome = store.start(asked.validated_data["flow"], asked.validated_data["input"])
        if pk is None and outcome.error == "no_such_flow":  # unregistered since validated
            raise serializers.ValidationError({"flow": [outcome.detail]})
        location = reverse("api:flow-instance-detail", args=[pk]) if pk else None
        headers = {"Location": location} if location else None
        return answered(pk, outcome, status=status.HTTP_201_CREATED, headers=headers)

    @extend_schema(
        summary="Resume a suspended instance",
        description="Answers the operator wait the instance is suspended on with `value` "
        "(as the admin's form and `manage.py flows resume`). Give `tag` and `at` (the wait's "
        "tag and the log length you saw): if the instance has moved on since, the answer is "
        "refused with 409 `moved_on` instead of answering the next wait.",
        request=ResumeSerializer,
        responses={**OUTCOME, **REFUSED},
    )
    @action(detail=True, methods=["post"])
    def resume(self, request: Request, pk: str | None = None) -> Response:
        instance = self.get_object()
        asked = ResumeSerializer(data=request.data)
        asked.is_valid(raise_exception=True)
        given = asked.validated_data
        outcome = store.resume(
            instance.pk, given["value"], tag=given.get("tag"), at=given.get("at")
        )
        return answered(instance.pk, outcome)

    @extend_schema(
        summary="Cancel an instance",
        description="Stops an instance that is not done; its log is kept.",
        request=None,
        responses={**OUTCOME, **REFUSED},
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        instance = self.get_object()
        return answered(instance.pk, store.cancel(instance.pk))

    @extend_schema(
        summary="Retry a crashed instance",
        description="Drives a crashed or non-deterministic instance again from its log: "
        "steps that succeeded are replayed, failed ones run again.",
        request=None,
        responses={**OUTCOME, **REFUSED},
    )
    @action(detail=True, methods=["post"])
    def retry(self, request: Request, pk: str | None = None) -> Response:
        instance = self.get_object()
        return answered(instance.pk, store.retry(instance.pk))

    @extend_schema(
        summary="Fire an instance's timer now",
        description="A sleep ends, a wait's or receive's deadline passes (as `manage.py "
        "flows wake`).",
        request=None,
        responses={**OUTCOME, **REFUSED},
    )
    @action(detail=True, methods=["post"])
    def wake(self, request: Request, pk: str | None = None) -> Response:
        instance = self.get_object()
        return answered(instance.pk, store.wake(instance.pk, early=True))

    @extend_schema(
        summary="Page through an instance's log",
        description="Every entry of the replay log, oldest first.",
        responses={200: FlowLogEntrySerializer(many=True)},
        filters=False,
    )
    @action(detail=True, methods=["get"], filterset_class=None, cursor_ordering="seq")
    def log(self, request: Request, pk: str | None = None) -> Response:
        instance = self.get_object()
        page = self.paginate_queryset(instance.log.all())
        return self.get_paginated_response(FlowLogEntrySerializer(page, many=True).data)
