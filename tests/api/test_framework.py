"""The API's base: auth, the error shape, the schema and its offline docs page, and the
federation endpoints left as they were."""

from __future__ import annotations

import re

import pytest
from django.contrib.staticfiles import finders
from django.core.management import call_command
from django.core.management.base import CommandError
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import ValidationError
from rest_framework.test import APIClient

from fedsx.api.exceptions import Conflict, exception_handler
from fedsx.models import InboxEntry
from tests.inbox.helpers import deliver, remote_sender

pytestmark = pytest.mark.django_db


def test_schema_needs_credentials(anon):
    response = anon.get("/api/v1/schema/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert response.json()["error"] == "not_authenticated"


def test_wrong_token_is_401(anon):
    anon.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    response = anon.get("/api/v1/schema/")
    assert response.status_code == 401
    assert response.json()["error"] == "authentication_failed"


def test_schema_is_openapi_3_mounted_under_the_api(admin):
    response = admin.get("/api/v1/schema/?format=json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert schema["servers"] == [{"url": "/api/v1"}]
    assert "Error" in schema["components"]["schemas"]
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            assert operation.get("summary"), (method, path)
            assert {"401", "403"} <= set(operation["responses"]), (method, path)
    # The federation endpoints are not part of the API's schema.
    assert not any("inbox" in path and "actors" not in path for path in schema["paths"])


def test_api_root_lists_resources_for_a_signed_in_user(operator, anon):
    assert anon.get("/api/v1/").status_code == 401
    assert operator.get("/api/v1/", HTTP_ACCEPT="application/json").status_code == 200


def test_session_auth_serves_the_browsable_api(admin_user):
    client = APIClient()
    client.force_login(admin_user)
    response = client.get("/api/v1/", HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert b"<html" in response.content


def test_docs_page_and_its_assets_are_served_locally(admin_user):
    client = APIClient()
    client.force_login(admin_user)
    response = client.get("/api/v1/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "/api/v1/schema/" in html
    assert not re.search(r"(src|href)=[\"']?(https?:)?//", html), "an asset from another site"
    assets = re.findall(r"/static/(drf_spectacular_sidecar/[^\"' ]+)", html)
    assert {a.rsplit("/", 1)[-1] for a in assets} >= {
        "swagger-ui.css",
        "swagger-ui-bundle.js",
        "swagger-ui-standalone-preset.js",
    }
    for asset in assets:
        assert finders.find(asset), f"{asset} is not in the installed static files"


def test_validation_errors_name_the_field():
    response = exception_handler(ValidationError({"name": ["This field is required."]}), {})
    assert response.status_code == 400
    assert response.data == {
        "error": "invalid",
        "detail": "name: This field is required.",
        "fields": {"name": ["This field is required."]},
    }


def test_conflict_is_409_with_its_code():
    response = exception_handler(Conflict("not_suspended", "instance 3 is done"), {})
    assert response.status_code == 409
    assert response.data == {"error": "not_suspended", "detail": "instance 3 is done"}


class TestApiTokenCommand:
    def test_prints_a_new_token_replacing_the_old(self, operator_user, capsys):
        call_command("api_token", "operator")
        first = capsys.readouterr().out.strip()
        call_command("api_token", "operator")
        second = capsys.readouterr().out.strip()
        assert first != second
        assert list(Token.objects.values_list("key", flat=True)) == [second]
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {second}")
        assert client.get("/api/v1/", HTTP_ACCEPT="application/json").status_code == 200
        client.credentials(HTTP_AUTHORIZATION=f"Token {first}")
        assert client.get("/api/v1/", HTTP_ACCEPT="application/json").status_code == 401

    def test_revoke(self, operator_user, capsys):
        call_command("api_token", "operator")
        call_command("api_token", "operator", "--revoke")
        assert not Token.objects.exists()
        with pytest.raises(CommandError, match="no token to revoke"):
            call_command("api_token", "operator", "--revoke")

    def test_unknown_user_is_one_line(self):
        with pytest.raises(CommandError, match="no user named 'nobody'"):
            call_command("api_token", "nobody")


def test_inbox_is_unaffected_by_the_api_and_by_restrictive_drf_defaults(settings, client, demo):
    """A host requiring auth for its own DRF views must not shut out other servers."""
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.TokenAuthentication"],
        "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAdminUser"],
        "DEFAULT_THROTTLE_CLASSES": ["rest_framework.throttling.AnonRateThrottle"],
        "DEFAULT_THROTTLE_RATES": {"anon": "0/min"},
    }
    bob = remote_sender("https://remote.example/users/bob")
    follow = {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{bob.ap_id}#follows/1",
        "type": "Follow",
        "actor": bob.ap_id,
        "object": demo.ap_id,
    }
    response = deliver(client, "/actors/demo/inbox", follow, bob)
    assert response.status_code == 202, response.content
    assert InboxEntry.objects.filter(actor=demo).count() == 1
    assert client.get("/actors/demo", HTTP_ACCEPT="application/activity+json").status_code == 200


def test_unknown_api_path_is_a_json_404(admin):
    response = admin.get("/api/v1/actors")
    assert response.status_code == 404
    assert response.json() == {
        "error": "not_found",
        "detail": "no such API resource (the API's paths end with a slash)",
    }


def schema_operations(admin) -> list[tuple[str, str]]:
    """Every operation the API serves, from its own schema: a route added later is covered
    without anyone adding it to a list."""
    schema = admin.get("/api/v1/schema/?format=json").json()
    operations = []
    for path, methods in schema["paths"].items():
        url = "/api/v1" + re.sub(r"\{[^}]+\}", "1", path)
        operations += [(method, url) for method in methods if method != "parameters"]
    return operations


def test_every_operation_in_the_schema_refuses_anonymous_and_unpermitted_callers(
    admin, anon, operator
):
    operations = schema_operations(admin)
    assert len(operations) > 40
    for method, url in operations:
        answer = getattr(anon, method)(url, {}, format="json")
        assert (answer.status_code, answer.json()["error"]) == (401, "not_authenticated"), url
        # Signed in, no model permission at all: refused before anything is looked up.
        answer = getattr(operator, method)(url, {}, format="json")
        assert answer.status_code == 403, (method, url, answer.content)
