"""The federation endpoints in a host project whose REST_FRAMEWORK defaults are its own."""

import json

import pytest

AP = "application/activity+json"

# What a host project's own API might well use: login required, Django's own error shape.
HOST_REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
}


@pytest.fixture(autouse=True)
def host_defaults(settings):
    settings.REST_FRAMEWORK = HOST_REST_FRAMEWORK  # DRF reloads its settings on the change


@pytest.mark.django_db
class TestUnderHostDefaults:
    def test_other_servers_can_still_read_an_actor(self, client, demo):
        response = client.get("/actors/demo", HTTP_ACCEPT=AP)
        assert response.status_code == 200
        assert response["Content-Type"] == AP
        assert json.loads(response.content)["id"] == "http://testserver/actors/demo"

    def test_errors_keep_the_federation_shape(self, client, demo):
        response = client.get("/actors/nobody", HTTP_ACCEPT=AP)
        assert response.status_code == 404
        assert json.loads(response.content) == {
            "error": "not_found",
            "detail": "no local actor named 'nobody'",
        }
        response = client.get("/.well-known/webfinger", {"resource": "nonsense"})
        assert response.status_code == 400
        assert set(json.loads(response.content)) == {"error", "detail"}


def test_every_federation_endpoint_is_public_whatever_the_host_defaults():
    # DRF fixes a view's default authentication and permission classes when the class is
    # defined, from the host's settings: each endpoint must declare its own (none but
    # fedsx's authorized-fetch permission).
    from django.urls import get_resolver

    views = [
        pattern.callback.view_class
        for pattern in get_resolver("fedsx.urls").url_patterns
        if hasattr(pattern.callback, "view_class")
    ]
    api_views = [view for view in views if hasattr(view, "permission_classes")]
    assert len(api_views) >= 6
    for view in api_views:
        for name in ("authentication_classes", "permission_classes", "throttle_classes"):
            declared_by = next(cls for cls in view.__mro__ if name in vars(cls))
            assert declared_by.__module__.startswith("fedsx."), (view, name)
            # none, or fedsx's own (AuthorizedFetch, a no-op unless FEDSX enables it)
            assert all(cls.__module__.startswith("fedsx.") for cls in getattr(view, name)), (
                view,
                name,
            )
