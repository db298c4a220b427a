"""Forwarded and relayed activities through the real inbox view: signed over HTTP by someone
other than their actor, accepted on the actor's LD signature or on the origin's copy, and
refused with nothing stored otherwise."""

import json
import socket
from pathlib import Path

import pytest

from fedsx.keys import store_actor
from fedsx.models import Activity, DomainBlock, InboxEntry

from .helpers import FIXTURES, deliver, remote_sender, stored_counts

INBOX = "/actors/demo/inbox"
LD = FIXTURES / "ld-signatures"
FORWARDING = FIXTURES / "forwarding"


def load(path: Path) -> dict:
    return json.loads(path.read_text())


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """Every name resolves to loopback, where the SSRF guard refuses it unless allowlisted:
    an origin fetch for a fixture's real host never leaves the machine."""
    real = socket.getaddrinfo

    def loopback(host, port, *args, **kwargs):
        return real("127.0.0.1", port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", loopback)


@pytest.fixture
def relay(db):
    """The relay that re-sends posts, with its key known."""
    return remote_sender("https://relay.example/actor", label="relay")


@pytest.fixture
def yukimochi(db):
    """The relayed Create's actor, its key stored as a fetch would have stored it."""
    person = load(LD / "activity-relay" / "person.json")
    key = person["publicKey"]
    return store_actor(person["id"], key["id"], key["publicKeyPem"], person)


def relayed_create() -> dict:
    return load(LD / "activity-relay" / "create.json")


def assert_refused(response, status, code):
    assert response.status_code == status, response.content
    assert json.loads(response.content)["error"] == code
    assert stored_counts() == (0, 0)


@pytest.mark.django_db
class TestLinkedDataSignature:
    def test_relayed_create_is_accepted_as_its_actors(self, client, demo, relay, yukimochi):
        response = deliver(client, INBOX, relayed_create(), relay)
        assert response.status_code == 202, response.content
        stored = Activity.objects.get()
        assert stored.actor == yukimochi.ap_id
        assert stored.forwarded_by == relay.ap_id
        assert stored.payload["object"]["content"] == "<p>てすてす</p>"
        assert stored.payload["signature"]["creator"].startswith(yukimochi.ap_id)
        assert InboxEntry.objects.get().activity == stored

    def test_a_repeat_from_the_relay_stores_nothing_more(self, client, demo, relay, yukimochi):
        assert deliver(client, INBOX, relayed_create(), relay).status_code == 202
        assert deliver(client, INBOX, relayed_create(), relay).status_code == 202
        assert stored_counts() == (1, 1)

    def test_forwarded_follow_signed_by_its_actor(self, client, demo, relay):
        admin = load(LD / "pleroma-fixtures" / "admin@mastdon.example.org.json")
        store_actor(
            admin["id"], admin["publicKey"]["id"], admin["publicKey"]["publicKeyPem"], admin
        )
        follow = load(LD / "pleroma-fixtures" / "mastodon-follow-activity.json")
        response = deliver(client, INBOX, follow, relay)
        assert response.status_code == 202, response.content
        assert Activity.objects.get().forwarded_by == relay.ap_id

    def test_ld_signature_over_a_changed_body(self, client, demo, relay):
        admin = load(LD / "pleroma-fixtures" / "admin@mastdon.example.org.json")
        store_actor(
            admin["id"], admin["publicKey"]["id"], admin["publicKey"]["publicKeyPem"], admin
        )
        follow = load(LD / "pleroma-fixtures" / "mastodon-follow-activity.json")
        follow["object"] = "http://testserver/actors/demo"
        assert_refused(deliver(client, INBOX, follow, relay), 401, "owner_mismatch")

    def test_changed_relayed_create_cannot_be_had_from_its_origin(
        self, client, demo, relay, yukimochi
    ):
        create = relayed_create()
        create["object"]["content"] = "<p>not what was said</p>"
        # The LD signature fails; the origin (innocent.yukimochi.io) is asked and the guard
        # refuses it here (it resolves to loopback): nothing is attributed to YUKIMOCHI.
        assert_refused(deliver(client, INBOX, create, relay), 401, "owner_mismatch")

    def test_ld_signature_by_another_actors_key(self, client, demo, relay, yukimochi):
        create = relayed_create()
        create["signature"]["creator"] = relay.key_id
        assert_refused(deliver(client, INBOX, create, relay), 401, "owner_mismatch")

    def test_unknown_context_counts_as_no_signature(self, client, demo, relay, yukimochi):
        create = relayed_create()
        create["@context"] = [*create["@context"], "https://unknown.example/ns.jsonld"]
        assert_refused(deliver(client, INBOX, create, relay), 401, "owner_mismatch")

    def test_mastodon_forged_ld_payload(self, client, demo, relay):
        forged = load(FORWARDING / "mastodon-forged-ld" / "create-forged.json")
        pem = (FORWARDING / "mastodon-forged-ld" / "bob-public.pem").read_text()
        store_actor(forged["actor"], forged["signature"]["creator"], pem, None)
        response = deliver(client, INBOX, forged, relay)
        assert_refused(response, 401, "ld_signature_mismatch")
        assert "puck was here" not in json.dumps(list(Activity.objects.values("payload")))


@pytest.mark.django_db
class TestDomainBlocks:
    def test_forwarder_from_a_blocked_domain(self, client, demo, relay, yukimochi):
        DomainBlock.objects.create(domain="relay.example")
        assert_refused(deliver(client, INBOX, relayed_create(), relay), 403, "domain_blocked")

    def test_actor_from_a_blocked_domain(self, client, demo, relay, yukimochi):
        DomainBlock.objects.create(domain="innocent.yukimochi.io")
        assert_refused(deliver(client, INBOX, relayed_create(), relay), 403, "domain_blocked")


@pytest.mark.django_db
class TestRelay:
    def test_relays_own_announce_is_a_plain_delivery(self, client, demo):
        announce = load(FORWARDING / "activity-relay" / "announce-lp.json")
        relay = remote_sender(announce["actor"], label="relay")
        response = deliver(client, INBOX, announce, relay)
        assert response.status_code == 202, response.content
        stored = Activity.objects.get()
        assert (stored.actor, stored.forwarded_by) == (relay.ap_id, "")
        assert stored.payload == announce


def note(origin: str, **fields) -> dict:
    return {
        "id": f"{origin}/users/dave/statuses/1",
        "type": "Note",
        "attributedTo": f"{origin}/users/dave",
        "content": "<p>what dave said</p>",
        "to": ["https://www.w3.org/ns/activitystreams#Public"],
        "cc": [f"{origin}/users/dave/followers"],
        **fields,
    }


def forwarded_create(origin: str, **object_fields) -> dict:
    return {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{origin}/users/dave/statuses/1/activity",
        "type": "Create",
        "actor": f"{origin}/users/dave",
        "to": ["http://testserver/actors/demo"],
        "object": note(origin, **object_fields),
    }


@pytest.mark.django_db
class TestOriginFetch:
    def test_create_is_stored_as_its_origin_serves_it(self, client, demo, relay, keyserver):
        origin = keyserver.origin
        keyserver.serve("/users/dave/statuses/1", note(origin))
        create = forwarded_create(origin, content="<p>what the forwarder says</p>")
        response = deliver(client, INBOX, create, relay)
        assert response.status_code == 202, response.content
        stored = Activity.objects.get()
        assert stored.forwarded_by == relay.ap_id
        assert stored.actor == f"{origin}/users/dave"
        assert stored.payload["object"]["content"] == "<p>what dave said</p>"
        assert stored.payload["to"] == note(origin)["to"]  # the origin's addressing
        assert keyserver.hits["/users/dave/statuses/1"] == 1
        assert "Signature" in keyserver.requests[0][1]  # a signed GET

    def test_announce_is_fetched_by_its_own_id(self, client, demo, relay, keyserver):
        origin = keyserver.origin
        announce = {
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": f"{origin}/users/dave/statuses/2/activity",
            "type": "Announce",
            "actor": f"{origin}/users/dave",
            "object": "https://elsewhere.example/notes/1",
            "to": ["https://www.w3.org/ns/activitystreams#Public"],
        }
        keyserver.serve("/users/dave/statuses/2/activity", announce)
        response = deliver(client, INBOX, {**announce, "object": "https://x.example/n"}, relay)
        assert response.status_code == 202, response.content
        stored = Activity.objects.get()
        assert stored.payload == announce
        assert stored.forwarded_by == relay.ap_id

    def test_origin_serving_another_object(self, client, demo, relay, keyserver):
        origin = keyserver.origin
        keyserver.serve("/users/dave/statuses/1", note(origin, id=f"{origin}/users/dave/x"))
        response = deliver(client, INBOX, forwarded_create(origin), relay)
        assert_refused(response, 401, "origin_mismatch")

    def test_origin_serving_another_actors_object(self, client, demo, relay, keyserver):
        origin = keyserver.origin
        keyserver.serve("/users/dave/statuses/1", note(origin, attributedTo=f"{origin}/users/eve"))
        response = deliver(client, INBOX, forwarded_create(origin), relay)
        assert_refused(response, 401, "origin_mismatch")

    def test_origin_serving_another_activity(self, client, demo, relay, keyserver):
        origin = keyserver.origin
        announce = {
            "id": f"{origin}/users/dave/statuses/2/activity",
            "type": "Announce",
            "actor": f"{origin}/users/dave",
            "object": "https://elsewhere.example/notes/1",
        }
        keyserver.serve(
            "/users/dave/statuses/2/activity", {**announce, "actor": f"{origin}/users/eve"}
        )
        assert_refused(deliver(client, INBOX, announce, relay), 401, "origin_mismatch")

    def test_object_on_another_host_is_not_fetched(self, client, demo, relay, keyserver):
        origin = keyserver.origin
        create = forwarded_create(origin, id="https://elsewhere.example/notes/1")
        assert_refused(deliver(client, INBOX, create, relay), 401, "owner_mismatch")
        assert not keyserver.hits

    def test_gone_at_the_origin(self, client, demo, relay, keyserver):
        response = deliver(client, INBOX, forwarded_create(keyserver.origin), relay)
        assert_refused(response, 401, "owner_mismatch")
        assert keyserver.hits["/users/dave/statuses/1"] == 1

    def test_follow_is_never_fetched(self, client, demo, relay, keyserver):
        follow = {
            "id": f"{keyserver.origin}/users/dave#follows/1",
            "type": "Follow",
            "actor": f"{keyserver.origin}/users/dave",
            "object": "http://testserver/actors/demo",
        }
        assert_refused(deliver(client, INBOX, follow, relay), 401, "owner_mismatch")
        assert not keyserver.hits
