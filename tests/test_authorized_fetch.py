"""Authorized fetch (FEDSX["AUTHORIZED_FETCH"]) through the real views: posted activities and
objects, the outbox and the follow collections need a valid HTTP signature from a server that
is not blocked; the actor document answers anyone else with a minimal form holding its keys;
the instance actor is always served whole."""

from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.utils import timezone

from fedsx import httpsig, outbox
from fedsx.documents import MINIMAL_FIELDS
from fedsx.models import Actor, DomainBlock
from tests.inbox.helpers import keypair, meta, remote_sender
from tests.inbox.test_keys import actor_document, sender_at
from tests.keyserver import KeyServer

AP = "application/activity+json"
PUBLIC = "https://www.w3.org/ns/activitystreams#Public"
pytestmark = pytest.mark.django_db


@pytest.fixture
def authorized_fetch(settings):
    settings.FEDSX = {**settings.FEDSX, "AUTHORIZED_FETCH": True}


@pytest.fixture
def alice(db):
    """A remote actor whose key the node already holds."""
    return remote_sender("https://remote.example/users/alice")


@pytest.fixture
def paths(demo) -> list[str]:
    """Everything authorized fetch guards: a posted activity and its object, the outbox
    (collection and page), the follow collections."""
    record = outbox.post(demo, {"type": "Note", "content": "hi", "to": [PUBLIC]})
    activity = urlsplit(record.ap_id).path
    note = urlsplit(record.payload["object"]["id"]).path
    base = "/actors/demo"
    return [
        activity,
        note,
        f"{base}/outbox",
        f"{base}/outbox?page=true",
        f"{base}/followers",
        f"{base}/following",
    ]


def signed_get(client, path, sender, *, scheme=httpsig.CAVAGE, now=None, private_pem=None):
    headers = httpsig.sign_request(
        "GET",
        f"http://testserver{path}",
        {"Accept": AP},
        None,
        key_id=sender.key_id,
        private_key_pem=private_pem or sender.private_pem,
        scheme=scheme,
        now=now,
    )
    return client.get(path, **meta(headers))


def body(response) -> dict:
    return json.loads(response.content)


def test_off_by_default_anyone_reads(client, paths):
    for path in paths:
        response = client.get(path, HTTP_ACCEPT=AP)
        assert response.status_code == 200, path
        assert "Signature" not in response.get("Vary", "")


def test_unsigned_gets_are_refused_401(client, paths, authorized_fetch):
    for path in paths:
        response = client.get(path, HTTP_ACCEPT=AP)
        assert response.status_code == 401, path
        assert body(response)["error"] == "missing_signature"
        assert set(body(response)) == {"error", "detail"}
        assert "Signature" in response["Vary"]


@pytest.mark.parametrize("scheme", [httpsig.CAVAGE, httpsig.RFC9421])
def test_signed_gets_are_served(client, paths, alice, authorized_fetch, scheme):
    for path in paths:
        response = signed_get(client, path, alice, scheme=scheme)
        assert response.status_code == 200, (path, response.content)
        assert body(response)["id"].endswith(path.split("?")[0]) or "?page" in path


def test_a_signature_by_another_key_is_refused_401(client, paths, alice, authorized_fetch):
    other_private, _ = keypair("someone-else")
    response = signed_get(client, paths[0], alice, private_pem=other_private)
    assert response.status_code == 401
    assert body(response)["error"] == "bad_signature"


def test_a_stale_signature_is_refused_401(client, paths, alice, authorized_fetch):
    old = timezone.now() - timedelta(hours=3)
    response = signed_get(client, paths[0], alice, now=old)
    assert response.status_code == 401
    assert body(response)["error"] in {"date_out_of_window", "signature_expired"}


def test_a_blocked_domain_is_refused_403_though_signed(client, paths, alice, authorized_fetch):
    DomainBlock.objects.create(domain="remote.example")
    for path in paths:
        response = signed_get(client, path, alice)
        assert response.status_code == 403, path
        assert body(response)["error"] == "domain_blocked"


def test_an_unknown_key_is_fetched_then_the_get_served(client, paths, authorized_fetch, settings):
    with KeyServer() as server:
        settings.FEDSX = {**settings.FEDSX, "FETCH_ALLOWLIST": f"127.0.0.1:{server.port}"}
        bob = sender_at(server.origin, "bob")
        server.serve("/users/bob", actor_document(server.origin, "bob", bob.public_pem))
        assert signed_get(client, paths[0], bob).status_code == 200
        assert Actor.objects.filter(ap_id=bob.ap_id, key_id=bob.key_id).exists()
        # a key its server will not give is no key: 401, nothing served
        carl = sender_at(server.origin, "carl")
        response = signed_get(client, paths[0], carl)
        assert response.status_code == 401
        assert body(response)["error"].startswith("key_")


def test_a_private_post_stays_hidden_from_a_signed_fetch(client, demo, alice, authorized_fetch):
    record = outbox.post(demo, {"type": "Note", "content": "psst", "to": [demo.followers_url]})
    response = signed_get(client, urlsplit(record.ap_id).path, alice)
    assert response.status_code == 404


# --- the actor document ------------------------------------------------------------------


def test_an_unsigned_actor_fetch_gets_the_minimal_form_with_the_keys(
    client, demo, authorized_fetch
):
    response = client.get("/actors/demo", HTTP_ACCEPT=AP)
    assert response.status_code == 200
    doc = body(response)
    assert set(doc) == set(MINIMAL_FIELDS)
    assert doc["id"] == demo.ap_id and doc["inbox"] == demo.inbox_url
    # what a key fetch needs: the RSA key of HTTP signatures, the Multikey of proofs
    assert doc["publicKey"] == {
        "id": demo.key_id,
        "owner": demo.ap_id,
        "publicKeyPem": demo.public_key_pem,
    }
    assert doc["assertionMethod"][0]["publicKeyMultibase"] == demo.ed25519_public_key
    for private in ("name", "summary", "followers", "following", "published", "url"):
        assert private not in doc
    assert "Signature" in response["Vary"]


def test_a_signed_actor_fetch_gets_the_whole_document(client, demo, alice, authorized_fetch):
    doc = body(signed_get(client, "/actors/demo", alice))
    assert {"name", "summary", "followers", "following", "published", "url"} <= set(doc)


def test_a_badly_signed_or_blocked_actor_fetch_gets_the_minimal_form(
    client, demo, alice, authorized_fetch
):
    other_private, _ = keypair("someone-else")
    doc = body(signed_get(client, "/actors/demo", alice, private_pem=other_private))
    assert set(doc) == set(MINIMAL_FIELDS)
    DomainBlock.objects.create(domain="remote.example")
    doc = body(signed_get(client, "/actors/demo", alice))
    assert set(doc) == set(MINIMAL_FIELDS)


def test_the_instance_actor_is_always_served_whole(client, db, authorized_fetch):
    response = client.get("/actor", HTTP_ACCEPT=AP)
    assert response.status_code == 200
    doc = body(response)
    assert doc["type"] == "Application"
    assert "name" in doc and "publicKey" in doc


def test_a_browser_still_gets_the_profile_page(client, demo, authorized_fetch):
    response = client.get("/actors/demo", HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
