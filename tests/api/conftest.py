"""Users for the API tests: one with a model's permissions, one without, a superuser; each
authenticates with a real token (rest_framework.authtoken) through the real views."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from rest_framework.test import APIClient

from fedsx.api.authentication import issue_token


def json_client() -> APIClient:
    client = APIClient()
    client.default_format = "json"  # the API takes JSON only
    return client


def token_client(user) -> APIClient:
    client = json_client()
    client.credentials(HTTP_AUTHORIZATION=f"Token {issue_token(user)}")
    return client


def grant(user, *codenames: str) -> None:
    """Give ``user`` permissions named ``app_label.codename`` (e.g. ``fedsx.view_actor``)."""
    for name in codenames:
        app_label, codename = name.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )


@pytest.fixture
def anon() -> APIClient:
    return json_client()


@pytest.fixture
def operator_user(db):
    return get_user_model().objects.create_user("operator", password="pw-operator")


@pytest.fixture
def operator(operator_user):
    """A client whose user has no model permission yet; tests ``grant`` what they need."""
    client = token_client(operator_user)
    client.user = operator_user
    return client


def allowed(user, *codenames: str) -> APIClient:
    grant(user, *codenames)
    # A fresh user object: Django caches permissions on the instance.
    return token_client(get_user_model().objects.get(pk=user.pk))


@pytest.fixture
def admin_user(db):
    return get_user_model().objects.create_superuser("root", password="pw-root")


@pytest.fixture
def admin(admin_user) -> APIClient:
    return token_client(admin_user)
