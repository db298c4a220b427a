"""The API's errors: ``{"error": "<code>", "detail": "..."}``, never a traceback.

Validation errors are ``{"error": "invalid", "detail": "name: ...", "fields": {"name":
[...]}}``. A refusal of the store (a flow that ``moved_on``, an instance ``not_suspended``,
a delivery already final...) is raised as ``Conflict(code, detail)`` and answered 409.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from django.http import Http404
from rest_framework import status
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error

from fedsx.errors import FederationError, error_body
from fedsx.errors import exception_handler as federation_exception_handler


class Conflict(FederationError):
    """The store refused what was asked in the resource's current state (409)."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(status.HTTP_409_CONFLICT, code, detail)


class Invalid(FederationError):
    """Bad input refused with a code of its own (e.g. the outbox's ``too_large``), naming
    the field that held it."""

    def __init__(self, code: str, field: str, detail: str) -> None:
        super().__init__(status.HTTP_400_BAD_REQUEST, code, f"{field}: {detail}")
        self.fields = {field: [detail]}


def exception_handler(exc, context):
    """DRF exception handler for the API's views."""
    if isinstance(exc, Http404):
        exc = NotFound(str(exc) or None)
    elif isinstance(exc, DjangoPermissionDenied):
        exc = PermissionDenied(str(exc) or None)
    elif isinstance(exc, DjangoValidationError):
        # Model validation (e.g. an actor name) is bad input like any serializer's.
        exc = ValidationError(as_serializer_error(exc))
    elif isinstance(exc, IntegrityError):
        # A serializer's uniqueness check and the insert are two statements: a concurrent
        # request can make the same record between them, and the database's unique key
        # refuses the second. The state changed under the request: a 409, never a 500.
        exc = Conflict("conflict", "a record made meanwhile clashes with this one: look again")
    if isinstance(exc, ValidationError):
        return Response(validation_body(exc.detail), status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, Invalid):
        body = {**error_body(exc.code, str(exc.detail)), "fields": exc.fields}
        return Response(body, status=exc.status_code)
    return federation_exception_handler(exc, context)


def validation_body(detail) -> dict:
    if isinstance(detail, dict):
        body = error_body("invalid", _summary(detail))
        body["fields"] = detail
        return body
    return error_body("invalid", _summary(detail))


def _summary(detail) -> str:
    """One line naming what was wrong, e.g. ``name: This field is required.``"""
    if isinstance(detail, dict):
        return "; ".join(f"{field}: {_summary(errors)}" for field, errors in detail.items())
    if isinstance(detail, list):
        return " ".join(_summary(item) for item in detail)
    return str(detail)
