"""OpenAPI (drf-spectacular): the error shape and the error responses of every operation.

``ApiSchema`` adds the errors every operation can answer (401, 403; 400 where it takes
input; 404 where it names a resource or pages), so a viewset only declares its own,
e.g. a refusal::

    @extend_schema(summary="Resume a suspended instance", responses={200: S, **errors(409)})
"""

from __future__ import annotations

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

ERROR_DESCRIPTIONS = {
    400: "Bad input: `fields` names each field that was wrong.",
    401: "No credentials, or a wrong token.",
    403: "The user lacks the model permission this operation needs.",
    404: "No such resource (or an invalid page cursor).",
    409: "The store refused in the resource's current state (`error` says why).",
}


class ErrorSerializer(serializers.Serializer):
    error = serializers.CharField(help_text="Stable machine-readable code, e.g. `invalid`.")
    detail = serializers.CharField(help_text="What went wrong, for a person.")
    fields = serializers.DictField(
        required=False,
        child=serializers.JSONField(),
        help_text="Validation errors only: the messages for each field that was wrong.",
    )


def errors(*codes: int) -> dict[int, OpenApiResponse]:
    """Error responses for ``extend_schema(responses=...)``."""
    return {
        code: OpenApiResponse(ErrorSerializer, description=ERROR_DESCRIPTIONS.get(code, ""))
        for code in codes
    }


class ApiSchema(AutoSchema):
    """AutoSchema with the API's standard error responses added to every operation."""

    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        responses = operation.setdefault("responses", {})
        for code in self.standard_error_codes():
            responses.setdefault(str(code), self._error_response(code))
        return operation

    def standard_error_codes(self) -> list[int]:
        codes = [401, 403]
        takes_input = self.method in {"POST", "PUT", "PATCH"} or self._is_list_view()
        if takes_input:
            codes.append(400)
        if "{" in self.path or (self.method == "GET" and self._is_list_view()):
            codes.append(404)
        return sorted(codes)

    def _error_response(self, code: int) -> dict:
        component = self.resolve_serializer(ErrorSerializer, "response")
        return {
            "description": ERROR_DESCRIPTIONS[code],
            "content": {"application/json": {"schema": component.ref}},
        }
