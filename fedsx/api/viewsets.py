"""The base every API resource builds on: auth, permissions, paging, filters, errors, schema.

Set on the views rather than in ``REST_FRAMEWORK``, so the host project's defaults and the
federation endpoints' public base never meet the API's.
"""

from __future__ import annotations

from django.db import transaction
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework import viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import JSONParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer
from rest_framework.routers import APIRootView

from .authentication import API_AUTHENTICATION
from .exceptions import exception_handler
from .pagination import CursorPage
from .permissions import ModelPermissions
from .schema import ApiSchema

NUL_REFUSED = "must not contain NUL characters (U+0000)"


class ApiView:
    """Mixin for any API view (put it first in the bases)."""

    authentication_classes = API_AUTHENTICATION
    permission_classes = [ModelPermissions]
    # Rate limits, if wanted, belong to the host project's proxy: operators are few.
    throttle_classes: list = []
    renderer_classes = [JSONRenderer, BrowsableAPIRenderer]
    parser_classes = [JSONParser]
    pagination_class = CursorPage
    filter_backends = [DjangoFilterBackend]
    schema = ApiSchema()
    # Non-CRUD actions and the permission kind they need, e.g. {"retry": "change"}.
    action_permissions: dict[str, str] = {}

    def get_exception_handler(self):
        return exception_handler

    def check_permissions(self, request) -> None:
        # Before the permission check, which may look the resource up: no database stores
        # a NUL in text (Postgres refuses it), so it is bad input, not a 500.
        if request.user and request.user.is_authenticated:
            given = {**self.kwargs, **request.query_params}
            bad = {name: [NUL_REFUSED] for name, value in given.items() if "\x00" in str(value)}
            if bad:
                raise ValidationError(bad)
        super().check_permissions(request)

    def perform_create(self, serializer) -> None:
        # A savepoint of its own: a unique key that a concurrent request won (a 409, see
        # exceptions.py) rolls back this write only, not a transaction around the request.
        with transaction.atomic():
            super().perform_create(serializer)

    def perform_update(self, serializer) -> None:
        with transaction.atomic():
            super().perform_update(serializer)


class ApiViewSet(ApiView, viewsets.GenericViewSet):
    """A resource: add the ``mixins`` it supports (list, retrieve, create, ...)."""


class ApiRootView(ApiView, APIRootView):
    """The browsable index of the API: any signed-in user, no model permission."""

    permission_classes = [IsAuthenticated]
    pagination_class = None
    filter_backends: list = []
    schema = None  # not an operation of the API
