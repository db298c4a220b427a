"""Actors, and each local actor's inbox and outbox logs (posting to the outbox, too)."""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from fedsx.actors import ActorExists, create_local_actor
from fedsx.errors import FederationError
from fedsx.models import USERNAME_RE, Actor, InboxEntry, OutboxEntry, local_users

from .exceptions import Conflict, Invalid
from .filters import ActorFilter, LogEntryFilter
from .schema import errors
from .serializers import (
    ActorSerializer,
    InboxEntrySerializer,
    OutboxEntrySerializer,
    PostedSerializer,
    PostSerializer,
)
from .viewsets import ApiViewSet

ACTOR_NAME = OpenApiParameter(
    "name",
    {"type": "string", "pattern": USERNAME_RE.pattern},
    OpenApiParameter.PATH,
    description="local actor name",
)


@extend_schema_view(
    list=extend_schema(summary="List actors, local and remote"),
    retrieve=extend_schema(summary="Show a local actor", parameters=[ACTOR_NAME]),
    create=extend_schema(
        summary="Create a local actor (with a new key pair)",
        responses={201: ActorSerializer, **errors(409)},
    ),
)
class ActorViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, ApiViewSet
):
    queryset = Actor.objects.all()
    serializer_class = ActorSerializer
    filterset_class = ActorFilter
    lookup_field = "username"
    lookup_url_kwarg = "name"
    lookup_value_regex = r"[^/]+"  # a name may hold dots

    def get_queryset(self) -> QuerySet[Actor]:
        if self.action == "list":
            return Actor.objects.all()
        return local_users()  # named by a local name: /actors/{name}/

    def perform_create(self, serializer: ActorSerializer) -> None:
        data = serializer.validated_data
        try:
            serializer.instance = create_local_actor(data["username"], name=data.get("name", ""))
        except ActorExists as exc:
            raise Conflict("actor_exists", str(exc)) from None


def local_actor(name: str) -> Actor:
    actor = local_users().filter(username=name).first()
    if actor is None:
        raise NotFound(f"no local actor named {name!r}")
    return actor


class LogViewSet(mixins.ListModelMixin, ApiViewSet):
    """One local actor's log, newest first, paged by its sequence number."""

    filterset_class = LogEntryFilter
    cursor_ordering = "-seq"

    def get_queryset(self) -> QuerySet:
        if getattr(self, "swagger_fake_view", False):  # schema generation: no actor
            return self.queryset.none()
        actor = local_actor(self.kwargs["name"])
        return (
            self.queryset.filter(actor=actor).select_related("activity").defer("activity__payload")
        )


@extend_schema_view(
    list=extend_schema(summary="List a local actor's inbox entries", parameters=[ACTOR_NAME])
)
class InboxViewSet(LogViewSet):
    queryset = InboxEntry.objects.all()
    serializer_class = InboxEntrySerializer


@extend_schema_view(
    list=extend_schema(summary="List a local actor's outbox entries", parameters=[ACTOR_NAME]),
    create=extend_schema(
        summary="Post an activity (or a bare object) as a local actor",
        description=(
            "The same as `manage.py post`: the outbox mints the id, wraps a bare object in a "
            "Create and records one delivery per target inbox; they go after the commit."
        ),
        parameters=[ACTOR_NAME],
        request=PostSerializer,
        responses={201: PostedSerializer},
    ),
)
class OutboxViewSet(LogViewSet):
    queryset = OutboxEntry.objects.all()
    serializer_class = OutboxEntrySerializer

    def create(self, request, name: str) -> Response:
        from fedsx import outbox  # the outbox imports the jobs layer: only when posting

        actor = local_actor(name)
        given = PostSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        try:
            activity = outbox.post(actor, given.validated_data["activity"])
        except FederationError as exc:
            if exc.status_code != status.HTTP_400_BAD_REQUEST:
                raise
            # What the inbox would refuse: the activity is what was wrong.
            raise Invalid(exc.code, "activity", str(exc.detail)) from None
        return Response(PostedSerializer(activity).data, status=status.HTTP_201_CREATED)
