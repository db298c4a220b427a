"""The API's URLconf: the schema, its docs page and every installed app's resources.

``fedsx.urls`` mounts it at ``/api/v1/``. Resources come from each installed app's
``api.register(router)`` (see ``fedsx.api``).
"""

from __future__ import annotations

from importlib import import_module

from django.apps import apps
from django.http import HttpRequest, JsonResponse
from django.templatetags.static import static
from django.urls import path, re_path
from django.utils.module_loading import module_has_submodule
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.routers import DefaultRouter

from fedsx.errors import error_body

from .viewsets import ApiRootView, ApiView

app_name = "api"


class ApiRouter(DefaultRouter):
    APIRootView = ApiRootView
    include_format_suffixes = False  # one URL per resource; ?format= still works


def app_routes() -> ApiRouter:
    """A router holding every installed app's API resources."""
    router = ApiRouter()
    for config in apps.get_app_configs():
        if not module_has_submodule(config.module, "api"):
            continue
        register = getattr(import_module(f"{config.name}.api"), "register", None)
        if callable(register):
            register(router)
    return router


SCHEMA_SETTINGS = {
    "TITLE": "fedsx operator API",
    "DESCRIPTION": (
        "Steer a fedsx node: actors, activities, inbox and outbox logs, deliveries, hosts, "
        "domain blocks, triggers and flows. Authenticate with `Authorization: Token <key>` "
        "(`manage.py api_token USERNAME`) or the admin's session. Errors are "
        '`{"error": "<code>", "detail": "..."}`.'
    ),
    "VERSION": "1",
    # Read-only fields (ids, times) are not asked for in request bodies.
    "COMPONENT_SPLIT_REQUEST": True,
}


class JsonErrors:
    """Errors as JSON, not in the view's document format (YAML, an HTML page)."""

    def handle_exception(self, exc):
        self.request.accepted_renderer = JSONRenderer()
        self.request.accepted_media_type = "application/json"
        return super().handle_exception(exc)


class SchemaView(JsonErrors, ApiView, SpectacularAPIView):
    """The OpenAPI 3 document of the API (YAML, or JSON with ``?format=json``)."""

    permission_classes = [IsAuthenticated]
    renderer_classes = SpectacularAPIView.renderer_classes
    pagination_class = None
    filter_backends: list = []
    # The API's routes only (not the federation endpoints nor the host's views), with the
    # mount point (wherever the host put it) as the server URL.
    urlconf = __name__

    @extend_schema(exclude=True)
    def get(self, request, *args, **kwargs):
        mount = request.path.removesuffix("schema/").rstrip("/")
        self.custom_settings = {**SCHEMA_SETTINGS, "SERVERS": [{"url": mount}]}
        return super().get(request, *args, **kwargs)


class DocsView(JsonErrors, ApiView, SpectacularSwaggerView):
    """Swagger UI over the schema; its assets come from drf-spectacular-sidecar, whatever
    the host's SPECTACULAR_SETTINGS say: the page works on a node without internet."""

    permission_classes = [IsAuthenticated]
    renderer_classes = SpectacularSwaggerView.renderer_classes
    pagination_class = None
    filter_backends: list = []
    url_name = "api:schema"
    title = SCHEMA_SETTINGS["TITLE"]

    @staticmethod
    def _swagger_ui_resource(filename: str) -> str:
        return static(f"drf_spectacular_sidecar/swagger-ui-dist/{filename}")

    @staticmethod
    def _swagger_ui_favicon() -> str:
        return static("drf_spectacular_sidecar/swagger-ui-dist/favicon-32x32.png")


def no_such_resource(request: HttpRequest, rest: str) -> JsonResponse:
    """Any other path under the API: a JSON 404, not Django's HTML page."""
    detail = "no such API resource"
    if not rest.endswith("/"):
        detail += " (the API's paths end with a slash)"
    return JsonResponse(error_body("not_found", detail), status=404)


urlpatterns = [
    path("schema/", SchemaView.as_view(), name="schema"),
    path("docs/", DocsView.as_view(), name="docs"),
    *app_routes().urls,
    re_path(r"^(?P<rest>.*)$", no_such_resource),
]
