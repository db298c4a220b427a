"""Errors answered to peers: JSON ``{"error": code, "detail": text}``, never a traceback."""

from __future__ import annotations

from rest_framework import status
from rest_framework.exceptions import APIException
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


class FederationError(APIException):
    """A refusal with a stable machine-readable ``code`` and a human ``detail``."""

    def __init__(self, status_code: int, code: str, detail: str, headers: dict | None = None):
        self.status_code = status_code
        self.code = code
        self.headers = headers or {}
        super().__init__(detail=detail, code=code)


def error_body(code: str, detail: str) -> dict[str, str]:
    return {"error": code, "detail": detail}


def exception_handler(exc, context):
    """DRF exception handler: every API error in the ``{"error", "detail"}`` shape."""
    if isinstance(exc, FederationError):
        return Response(
            error_body(exc.code, str(exc.detail)), status=exc.status_code, headers=exc.headers
        )
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    code = getattr(exc, "default_code", "error")
    detail = getattr(exc, "detail", str(exc))
    response.data = error_body(str(code), str(detail))
    return response


def not_found(detail: str) -> FederationError:
    return FederationError(status.HTTP_404_NOT_FOUND, "not_found", detail)


def bad_request(code: str, detail: str) -> FederationError:
    return FederationError(status.HTTP_400_BAD_REQUEST, code, detail)
