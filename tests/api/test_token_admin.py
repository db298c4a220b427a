"""The admin's API tokens page never lists a key: viewing tokens must not let anyone act
as their owners. A key is shown once, to whoever makes it."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from rest_framework.authtoken.models import Token

from fedsx.api.authentication import issue_token

from .conftest import grant

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/fedsx/apitoken/"


def staff(username: str, *perms: str):
    user = get_user_model().objects.create_user(username, password="pw", is_staff=True)
    grant(user, *perms)
    client = Client()
    client.force_login(user)
    return user, client


def test_a_viewer_of_tokens_sees_no_key():
    owner = get_user_model().objects.create_superuser("root", password="pw")
    key = issue_token(owner)
    _, viewer = staff("viewer", "fedsx.view_apitoken")
    listing = viewer.get(CHANGELIST)
    assert listing.status_code == 200
    assert "root" in listing.content.decode()
    assert key not in listing.content.decode()
    page = viewer.get(f"{CHANGELIST}{owner.pk}/change/")
    assert page.status_code == 200
    assert key not in page.content.decode()


def test_the_maker_sees_the_new_key_once():
    user = get_user_model().objects.create_user("script")
    _, maker = staff("maker", "fedsx.view_apitoken", "fedsx.add_apitoken")
    made = maker.post(f"{CHANGELIST}add/", {"user": user.pk}, follow=True)
    key = Token.objects.get(user=user).key
    assert key in made.content.decode()
    assert key not in maker.get(CHANGELIST).content.decode()


def test_revoking_in_the_admin_names_the_user_not_the_key():
    owner = get_user_model().objects.create_user("script")
    key = issue_token(owner)
    _, revoker = staff("revoker", "fedsx.view_apitoken", "fedsx.delete_apitoken")
    confirm = revoker.get(f"{CHANGELIST}{owner.pk}/delete/")
    assert confirm.status_code == 200
    assert "API token of script" in confirm.content.decode()
    assert key not in confirm.content.decode()
    revoker.post(f"{CHANGELIST}{owner.pk}/delete/", {"post": "yes"})
    assert not Token.objects.filter(user=owner).exists()


def test_drf_s_own_token_page_which_lists_keys_is_gone(admin_client):
    assert admin_client.get("/admin/authtoken/tokenproxy/").status_code == 404
