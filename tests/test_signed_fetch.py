"""Signed fetches: every GET the node makes is signed as its instance actor, through the one
guarded client.

The remote server here answers 401 to a GET whose signature does not verify, as GoToSocial
does and Mastodon in authorized-fetch mode. It verifies with the independent ``httpsig``
package, against the key the instance actor publishes at ``/actor``: read through our own
view, or (the last test) dereferenced over HTTP from a live node, as such a server does.
"""

from __future__ import annotations

import json
import urllib.request
from email.message import Message
from io import StringIO
from urllib.parse import urldefrag

import httpsig
import pytest
from django.core.management import CommandError, call_command

from fedsx import client as guarded
from fedsx import outbox
from fedsx.actors import instance_actor
from fedsx.client import FetchError
from fedsx.crypto import generate_rsa_keypair
from fedsx.errors import FederationError
from fedsx.fetch import ACCEPT, fetch_json
from fedsx.models import Activity, Actor, InboxEntry, OutboxEntry
from fedsx.resolve import ResolveError, actor_by_id, resolve_actor
from tests.inbox.helpers import deliver
from tests.inbox.test_gate import INBOX, follow
from tests.inbox.test_keys import actor_document, sender_at
from tests.keyserver import KeyServer
from tests.receiver import Receiver, Reply

AP = "application/activity+json"
COVERED = ["(request-target)", "host", "date"]


class SignedFetchesOnly:
    """``KeyServer.authorize``: 401 unless the GET is signed over COVERED by a key that
    ``key_for(key_id)`` gives (a PEM, or None for a key it does not know)."""

    def __init__(self, key_for) -> None:
        self.key_for = key_for
        self.verified: list[str] = []  # the keyIds of the GETs that verified

    def __call__(self, method: str, path: str, headers: Message) -> int | None:
        if "Signature" not in headers:
            return 401
        fields = dict(headers.items())
        key_id = _param(fields["Signature"], "keyId")
        pem = self.key_for(key_id) if key_id else None
        if pem is None:
            return 401
        verifier = httpsig.HeaderVerifier(
            fields,
            pem.encode(),
            required_headers=COVERED,
            method=method,
            path=path,
            sign_header="Signature",
        )
        if not verifier.verify():
            return 401
        self.verified.append(key_id)
        return None


def _param(signature: str, name: str) -> str | None:
    for part in signature.split(","):
        key, _, value = part.partition("=")
        if key.strip() == name:
            return value.strip().strip('"')
    return None


def published_key(client) -> dict:
    """The instance actor's key as anyone reads it: from its document at /actor."""
    response = client.get("/actor", HTTP_ACCEPT=AP)
    assert response.status_code == 200
    return json.loads(response.content)["publicKey"]


@pytest.fixture
def strict(settings, client, db):
    """A loopback remote server that answers only GETs signed by our instance actor."""
    key = published_key(client)
    with KeyServer() as server:
        settings.FEDSX = {**settings.FEDSX, "FETCH_ALLOWLIST": f"127.0.0.1:{server.port}"}
        server.authorize = SignedFetchesOnly(
            lambda key_id: key["publicKeyPem"] if key_id == key["id"] else None
        )
        yield server


def unsigned_get(url: str) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers={"Accept": AP})) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code


# ── the instance actor ─────────────────────────────────────────────────────────────────


@pytest.mark.django_db
class TestInstanceActor:
    def test_its_document_is_served_at_its_id(self, client):
        response = client.get("/actor", HTTP_ACCEPT=AP)
        assert response.status_code == 200
        assert response["Content-Type"] == AP
        doc = json.loads(response.content)
        assert doc["id"] == "http://testserver/actor"
        assert doc["type"] == "Application"
        assert doc["preferredUsername"] == "testserver"  # the node's domain, as Mastodon's
        assert doc["inbox"] == "http://testserver/actor/inbox"
        assert doc["outbox"] == "http://testserver/actor/outbox"
        assert doc["manuallyApprovesFollowers"] is True
        assert doc["endpoints"]["sharedInbox"] == "http://testserver/inbox"
        assert doc["publicKey"] == {
            "id": "http://testserver/actor#main-key",
            "owner": "http://testserver/actor",
            "publicKeyPem": instance_actor().public_key_pem,
        }
        assert doc["publicKey"]["publicKeyPem"].startswith("-----BEGIN PUBLIC KEY-----")
        assert "followers" not in doc and "following" not in doc
        assert "private" not in json.dumps(doc).lower()

    def test_content_negotiation_as_for_other_actors(self, client):
        accept = 'application/ld+json; profile="https://www.w3.org/ns/activitystreams"'
        ld = client.get("/actor", HTTP_ACCEPT=accept)
        assert ld.status_code == 200 and ld["Content-Type"].startswith("application/ld+json")
        page = client.get("/actor", HTTP_ACCEPT="text/html")
        assert page.status_code == 200 and page["Content-Type"].startswith("text/html")
        assert b"testserver" in page.content and b"http://testserver/actor" in page.content

    def test_its_outbox_is_an_empty_collection_and_its_inbox_the_shared_one(self, client):
        response = client.get("/actor/outbox", HTTP_ACCEPT=AP)
        assert response.status_code == 200
        collection = json.loads(response.content)
        assert (collection["type"], collection["totalItems"]) == ("OrderedCollection", 0)
        assert collection["id"] == "http://testserver/actor/outbox"
        # An unsigned delivery to its inbox is refused as at the shared inbox: it exists.
        refused = client.post("/actor/inbox", b"{}", content_type=AP)
        assert refused.status_code == 401
        assert json.loads(refused.content)["error"] == "missing_signature"

    def test_webfinger_answers_for_the_node_as_mastodon_does(self, client):
        response = client.get("/.well-known/webfinger", {"resource": "acct:testserver@testserver"})
        assert response.status_code == 200
        jrd = json.loads(response.content)
        assert jrd["subject"] == "acct:testserver@testserver"
        assert {"rel": "self", "type": AP, "href": "http://testserver/actor"} in jrd["links"]
        by_id = client.get("/.well-known/webfinger", {"resource": "http://testserver/actor"})
        assert json.loads(by_id.content)["subject"] == "acct:testserver@testserver"

    def test_it_is_made_once_and_keeps_its_key(self, settings):
        first = instance_actor()
        assert (first.is_local, first.is_instance, first.actor_type) == (
            True,
            True,
            "Application",
        )
        assert instance_actor().pk == first.pk
        settings.FEDSX = {**settings.FEDSX, "BASE_URL": "https://moved.example"}
        moved = instance_actor()  # the node moved: its ids follow, its key stays
        assert (moved.pk, moved.ap_id, moved.key_id) == (
            first.pk,
            "https://moved.example/actor",
            "https://moved.example/actor#main-key",
        )
        assert moved.private_key_pem == first.private_key_pem

    def test_two_first_uses_at_once_make_one(self, monkeypatch):
        """The row another process inserts between our look-up and our insert wins."""
        from fedsx import actors

        generate, rivals = actors.generate_rsa_keypair, []

        def racing_generate():
            pair = generate()
            if not rivals:  # while we make our key, someone else makes the actor
                rivals.append(True)
                rivals.append(instance_actor())
            return pair

        monkeypatch.setattr(actors, "generate_rsa_keypair", racing_generate)
        ours = instance_actor()
        assert ours.pk == rivals[1].pk
        assert ours.private_key_pem == rivals[1].private_key_pem
        assert Actor.objects.filter(is_local=True, username="").count() == 1

    def test_it_is_not_a_user(self, client, demo):
        instance_actor()
        nodeinfo = json.loads(client.get("/nodeinfo/2.1", HTTP_ACCEPT="*/*").content)
        assert nodeinfo["usage"]["users"]["total"] == 1  # demo only
        home = client.get("/", HTTP_ACCEPT="text/html").content.decode()
        assert "/actors/demo" in home and 'http://testserver/actor"' not in home

    def test_it_posts_and_follows_nothing(self, demo):
        node = instance_actor()
        for sender in (node, node.ap_id):
            with pytest.raises(FederationError) as info:
                outbox.post(sender, {"type": "Note", "content": "hello"})
            assert info.value.code == "instance_actor"
        quiet = {"stdout": StringIO(), "stderr": StringIO()}
        with pytest.raises(CommandError, match="no local actor named ''"):
            call_command("post", "-", "--as", "", stdin=StringIO('{"type": "Note"}'), **quiet)
        with pytest.raises(CommandError, match="no local actor named ''"):
            call_command("follow", demo.ap_id, "--as", "", **quiet)
        assert (Activity.objects.count(), OutboxEntry.objects.count()) == (0, 0)
        assert InboxEntry.objects.count() == 0


# ── signed GETs ────────────────────────────────────────────────────────────────────────


@pytest.mark.django_db
class TestSignedFetch:
    def test_the_server_refuses_unsigned_fetches(self, strict):
        url = strict.serve("/users/carol", {"id": "x"})
        assert unsigned_get(url) == 401

    def test_a_key_fetch_succeeds_against_a_server_demanding_signatures(self, client, demo, strict):
        sender = sender_at(strict.origin, "bob")
        strict.serve("/users/bob", actor_document(strict.origin, "bob", sender.public_pem))
        assert deliver(client, INBOX, follow(sender), sender).status_code == 202
        assert Actor.objects.get(ap_id=sender.ap_id).key_id == sender.key_id
        assert strict.authorize.verified == ["http://testserver/actor#main-key"]

    def test_an_actor_lookup_succeeds_through_webfinger(self, strict):
        host = f"127.0.0.1:{strict.port}"
        carol = strict.serve("/users/carol", actor_document(strict.origin, "carol", "x"))
        links = [{"rel": "self", "type": AP, "href": carol}]
        jrd = {"subject": f"acct:carol@{host}", "links": links}
        strict.serve(f"/.well-known/webfinger?resource=acct:carol@{host}", jrd)
        actor = resolve_actor(f"@carol@{host}")
        assert (actor.ap_id, actor.inbox_url) == (carol, f"{carol}/inbox")
        paths = [path for path, _ in strict.requests]
        assert paths == [f"/.well-known/webfinger?resource=acct:carol@{host}", "/users/carol"]
        assert len(strict.authorize.verified) == 2  # both signed, both verified

    def test_each_get_is_signed_over_target_host_and_date_with_accept_and_agent(self, strict):
        strict.serve("/users/bob", "/moved/bob", status=302)
        strict.serve("/moved/bob", {"id": "bob"})
        assert fetch_json(f"{strict.origin}/users/bob") == {"id": "bob"}
        assert [path for path, _ in strict.requests] == ["/users/bob", "/moved/bob"]
        for _, headers in strict.requests:
            signature = headers["Signature"]
            assert _param(signature, "headers") == " ".join(COVERED)  # no digest on a GET
            assert _param(signature, "algorithm") == "rsa-sha256"
            assert "Digest" not in headers
            assert headers["Host"] == f"127.0.0.1:{strict.port}"
            assert headers["Accept"] == ACCEPT
            assert headers["User-Agent"].startswith("fedsx/")
            assert "http://testserver" in headers["User-Agent"]  # the node
        assert len(strict.authorize.verified) == 2  # each hop signed for its own target

    def test_a_signature_by_another_key_is_refused(self, strict):
        """The server checks the signature, not merely its presence: once our instance key
        is not the one it was published with, the fetch is refused, so the successes above
        are real verifications."""
        node = instance_actor()
        node.private_key_pem, _ = generate_rsa_keypair()
        node.save()
        url = strict.serve("/users/carol", {"id": "carol"})
        with pytest.raises(FetchError) as info:
            fetch_json(url)
        assert (info.value.code, strict.authorize.verified) == ("remote_refused", [])
        assert len(strict.requests) == 1


# ── the guard, for GETs ────────────────────────────────────────────────────────────────


@pytest.mark.django_db
class TestGuard:
    def test_an_internal_address_is_never_connected_to(self, strict, settings):
        settings.FEDSX = {**settings.FEDSX, "FETCH_ALLOWLIST": ""}
        url = strict.serve("/users/carol", {"id": "carol"})
        with pytest.raises(FetchError) as info:
            fetch_json(url)
        assert info.value.code == "refused_url"
        assert strict.requests == []

    def test_the_address_checked_is_the_one_connected_to(self, strict, monkeypatch):
        """A name resolving to loopback is refused although that loopback address and port
        are allowlisted: the allowlist names hosts, and the check is made on the answer the
        connection uses (no second look-up a rebinding DNS server could change)."""
        real = guarded.socket.getaddrinfo

        def rebinding(host, port, *args, **kwargs):
            return real("127.0.0.1" if host == "docs.example" else host, port, *args, **kwargs)

        monkeypatch.setattr(guarded.socket, "getaddrinfo", rebinding)
        strict.serve("/users/carol", {"id": "carol"})
        with pytest.raises(FetchError) as info:
            fetch_json(f"http://docs.example:{strict.port}/users/carol")
        assert info.value.code == "refused_url"
        assert strict.requests == []

    def test_each_redirect_hop_goes_through_the_guard(self, strict, monkeypatch):
        checked = []
        check = guarded.checked_address

        def spy(host, port):
            checked.append((host, port))
            return check(host, port)

        monkeypatch.setattr(guarded, "checked_address", spy)
        strict.serve("/a", f"{strict.origin}/b", status=301)
        strict.serve("/b", "/c", status=307)
        strict.serve("/c", {"id": "c"})
        assert fetch_json(f"{strict.origin}/a") == {"id": "c"}
        # The test server closes each connection, so each hop connects, and is checked.
        assert checked == [("127.0.0.1", strict.port)] * 3

    def test_a_redirect_to_an_internal_address_is_not_followed(self, strict):
        strict.serve("/users/bob", "http://169.254.169.254/latest/meta-data/", status=302)
        with pytest.raises(FetchError) as info:
            fetch_json(f"{strict.origin}/users/bob")
        assert info.value.code == "refused_url"
        assert [path for path, _ in strict.requests] == ["/users/bob"]

    def test_actor_lookup_of_an_internal_address_is_refused(self, settings):
        settings.FEDSX = {**settings.FEDSX, "FETCH_ALLOWLIST": ""}
        with pytest.raises(ResolveError) as info:
            actor_by_id("http://10.0.0.1/users/x")
        assert info.value.code == "refused_url"


# ── POSTs through the same client ──────────────────────────────────────────────────────


def test_a_post_names_fedsx_and_follows_no_redirect(settings):
    with Receiver() as receiver:
        settings.FEDSX = {**settings.FEDSX, "FETCH_ALLOWLIST": receiver.host}
        receiver.script("/inbox", Reply(302, headers={"Location": receiver.url("/elsewhere")}))
        answer = guarded.post(receiver.url("/inbox"), b"{}", {"Content-Type": AP})
        assert answer.status == 302
        (received,) = receiver.wait_for(1)
        assert received.path == "/inbox"
        assert received.headers["User-Agent"].startswith("fedsx/")
        assert "http://testserver" in received.headers["User-Agent"]


# ── a live node, dereferenced as a strict server does ──────────────────────────────────


@pytest.mark.django_db(transaction=True)
def test_a_strict_server_verifies_our_fetch_with_the_key_it_dereferences(live_server, settings):
    """As GoToSocial: the server reads the keyId of our signed GET from our node over HTTP
    (unsigned: an instance actor must be readable to anyone) and verifies against it."""
    settings.FEDSX = {**settings.FEDSX, "BASE_URL": live_server.url}
    dereferenced = []

    def key_for(key_id: str) -> str | None:
        request = urllib.request.Request(urldefrag(key_id)[0], headers={"Accept": AP})
        with urllib.request.urlopen(request, timeout=5) as response:
            document = json.loads(response.read())
        dereferenced.append(document["id"])
        key = document["publicKey"]
        return key["publicKeyPem"] if key["id"] == key_id else None

    with KeyServer() as server:
        server.authorize = SignedFetchesOnly(key_for)
        settings.FEDSX = {**settings.FEDSX, "FETCH_ALLOWLIST": f"127.0.0.1:{server.port}"}
        carol = server.serve("/users/carol", actor_document(server.origin, "carol", "x"))
        actor = actor_by_id(carol)
    assert actor.ap_id == carol and actor.inbox_url == f"{carol}/inbox"
    assert dereferenced == [f"{live_server.url}/actor"]
    assert server.authorize.verified == [f"{live_server.url}/actor#main-key"]
