"""Forwarded and relayed activities through the real inbox view: signed over HTTP by someone
other than their actor, accepted on the actor's integrity proof, its LD signature or the
origin's copy, and refused with nothing stored otherwise."""

import json
import socket
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from fedsx import proofs
from fedsx.httpsig import load_public_key
from fedsx.keys import store_actor
from fedsx.models import Activity, Actor, DomainBlock, InboxEntry

from .helpers import FIXTURES, deliver, ld_sign, remote_sender, stored_counts

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


PROOFS = FIXTURES / "proofs" / "fep-8b32" / "extracted" / "current"


def dave_document(origin: str, multibase: str, method: str = "ed25519-key") -> dict:
    ap_id = f"{origin}/users/dave"
    return {
        "@context": [
            "https://www.w3.org/ns/activitystreams",
            "https://w3id.org/security/multikey/v1",
        ],
        "id": ap_id,
        "type": "Person",
        "inbox": f"{ap_id}/inbox",
        "assertionMethod": [
            {
                "id": f"{ap_id}#{method}",
                "type": "Multikey",
                "controller": ap_id,
                "publicKeyMultibase": multibase,
            }
        ],
    }


@pytest.mark.django_db
class TestIntegrityProof:
    def test_fep_8b32_vector_with_the_actor_known(self, client, demo, relay):
        alice = load(PROOFS / "actor-alice.json")
        store_actor(alice["id"], None, "", alice)
        response = deliver(client, INBOX, load(PROOFS / "create-signed.json"), relay)
        assert response.status_code == 202, response.content
        stored = Activity.objects.get()
        assert (stored.actor, stored.forwarded_by) == (alice["id"], relay.ap_id)
        assert stored.payload == load(PROOFS / "create-signed.json")

    def test_actor_document_fetched_for_its_assertion_key(self, client, demo, relay, keyserver):
        secret, public = proofs.generate_keypair()
        document = dave_document(keyserver.origin, public)
        keyserver.serve("/users/dave", document)
        create = forwarded_create(keyserver.origin)
        signed = proofs.sign(
            create, proofs.decode_secret_key(secret), f"{document['id']}#ed25519-key"
        )
        assert deliver(client, INBOX, signed, relay).status_code == 202
        assert Activity.objects.get().forwarded_by == relay.ap_id
        assert keyserver.hits["/users/dave"] == 1
        assert not keyserver.hits["/users/dave/statuses/1"]  # the proof sufficed
        # The document is kept: the next proof by dave costs no fetch.
        again = proofs.sign(
            {**create, "id": create["id"] + "2"},
            proofs.decode_secret_key(secret),
            f"{document['id']}#ed25519-key",
        )
        assert deliver(client, INBOX, again, relay).status_code == 202
        assert keyserver.hits["/users/dave"] == 1

    def test_rotated_assertion_key_is_refetched(self, client, demo, relay, keyserver):
        _, old = proofs.generate_keypair()
        secret, new = proofs.generate_keypair()
        stale = dave_document(keyserver.origin, old)
        store_actor(stale["id"], None, "", stale)
        Actor.objects.filter(ap_id=stale["id"]).update(
            fetched_at=timezone.now() - timedelta(hours=1)
        )
        keyserver.serve("/users/dave", dave_document(keyserver.origin, new))
        create = forwarded_create(keyserver.origin)
        signed = proofs.sign(create, proofs.decode_secret_key(secret), f"{stale['id']}#ed25519-key")
        assert deliver(client, INBOX, signed, relay).status_code == 202
        assert keyserver.hits["/users/dave"] == 1
        document = Actor.objects.get(ap_id=stale["id"]).document
        assert document["assertionMethod"][0]["publicKeyMultibase"] == new

    def test_assertion_key_unavailable_just_now_is_a_503(
        self, client, demo, relay, keyserver, settings
    ):
        """A key fetch past the host's budget is worth retrying: answered as the gate's own."""
        settings.FEDSX = {**settings.FEDSX, "KEY_FETCH_BURST": 0}
        secret, public = proofs.generate_keypair()
        keyserver.serve("/users/dave", dave_document(keyserver.origin, public))
        create = forwarded_create(keyserver.origin)
        method = f"{keyserver.origin}/users/dave#ed25519-key"
        signed = proofs.sign(create, proofs.decode_secret_key(secret), method)
        response = deliver(client, INBOX, signed, relay)
        assert_refused(response, 503, "key_unavailable")
        assert response["Retry-After"]
        assert not keyserver.hits

    def test_proof_by_a_key_the_actor_does_not_list(self, client, demo, relay, keyserver):
        _, listed = proofs.generate_keypair()
        secret, _ = proofs.generate_keypair()
        keyserver.serve("/users/dave", dave_document(keyserver.origin, listed))
        create = forwarded_create(keyserver.origin)
        method = f"{keyserver.origin}/users/dave#other-key"
        signed = proofs.sign(create, proofs.decode_secret_key(secret), method)
        assert_refused(deliver(client, INBOX, signed, relay), 401, "owner_mismatch")

    def test_proof_with_the_listed_method_but_another_key(self, client, demo, relay, keyserver):
        _, listed = proofs.generate_keypair()
        secret, _ = proofs.generate_keypair()
        keyserver.serve("/users/dave", dave_document(keyserver.origin, listed))
        create = forwarded_create(keyserver.origin)
        method = f"{keyserver.origin}/users/dave#ed25519-key"
        signed = proofs.sign(create, proofs.decode_secret_key(secret), method)
        assert_refused(deliver(client, INBOX, signed, relay), 401, "owner_mismatch")

    def test_proof_by_the_forwarders_own_key(self, client, demo, relay, keyserver):
        secret, public = proofs.generate_keypair()
        keyserver.serve("/users/dave", dave_document(keyserver.origin, public))
        create = forwarded_create(keyserver.origin)
        signed = proofs.sign(create, proofs.decode_secret_key(secret), f"{relay.ap_id}#ed25519-key")
        assert_refused(deliver(client, INBOX, signed, relay), 401, "owner_mismatch")
        assert not keyserver.hits["/users/dave"]

    def test_proof_over_a_changed_body(self, client, demo, relay):
        alice = load(PROOFS / "actor-alice.json")
        store_actor(alice["id"], None, "", alice)
        create = load(PROOFS / "create-signed.json")
        create["object"]["content"] = "Goodbye world"
        assert_refused(deliver(client, INBOX, create, relay), 401, "owner_mismatch")


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

    def test_changed_create_cannot_be_had_from_its_origin(self, client, demo, relay, keyserver):
        """The LD signature fails on the changed body; the origin (on the fetch allowlist) is
        asked and answers another object than the one named: nothing is attributed to dave."""
        origin = keyserver.origin
        dave = remote_sender(f"{origin}/users/dave", label="dave")
        create = ld_sign(forwarded_create(origin), dave.key_id, dave.private_pem)
        create["object"]["content"] = "<p>not what was said</p>"
        keyserver.serve("/users/dave/statuses/1", note(origin, id=f"{origin}/users/dave/2"))
        response = deliver(client, INBOX, create, relay)
        assert_refused(response, 401, "origin_mismatch")
        assert keyserver.hits["/users/dave/statuses/1"] == 1  # the comparison refused it
        assert not keyserver.hits["/users/dave"]  # dave's key was known: no key fetch

    def test_ld_signature_by_another_actors_key(self, client, demo, relay, yukimochi):
        create = relayed_create()
        create["signature"]["creator"] = relay.key_id
        assert_refused(deliver(client, INBOX, create, relay), 401, "owner_mismatch")

    def test_creator_on_another_host_is_not_fetched(
        self, client, demo, relay, yukimochi, keyserver
    ):
        create = relayed_create()
        create["signature"]["creator"] = f"{keyserver.origin}/users/eve#main-key"
        assert_refused(deliver(client, INBOX, create, relay), 401, "owner_mismatch")
        assert not keyserver.hits

    def test_large_document_counts_as_no_signature(self, client, demo, relay, yukimochi, caplog):
        """JSON-LD is costly per byte: past MAX_LD_BYTES the signature is not checked."""
        create = relayed_create()
        create["cc"] = [f"https://relay.example/users/{n:06}" for n in range(3000)]
        with caplog.at_level("INFO", logger="fedsx.inbox"):
            response = deliver(client, INBOX, create, relay)
        assert_refused(response, 401, "owner_mismatch")
        assert "bytes of JSON-LD" in caplog.text

    def test_rotated_key_canonicalises_once(self, client, demo, relay, yukimochi, monkeypatch):
        """A stale stored key fails, the fresh one verifies: the document's RDF is the same."""
        from fedsx import jsonld, keys

        calls = []
        real = jsonld.canonical_nquads
        monkeypatch.setattr(jsonld, "canonical_nquads", lambda d: calls.append(1) or real(d))
        person = load(LD / "activity-relay" / "person.json")
        stale = keys.VerificationKey(
            person["publicKey"]["id"], person["id"], load_public_key(relay.public_pem), None, False
        )
        fresh = keys.key_for(person["publicKey"]["id"])
        real_key_for = keys.key_for
        monkeypatch.setattr(
            keys,
            "key_for",
            lambda key_id: stale if key_id == stale.key_id else real_key_for(key_id),
        )
        monkeypatch.setattr(keys, "refetch_if_stale", lambda key: fresh)
        response = deliver(client, INBOX, relayed_create(), relay)
        assert response.status_code == 202, response.content
        assert len(calls) == 2  # the options and the document, once each

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


@pytest.fixture
def brauca(db):
    """activitypub.academy's actor, whose PEM has spaces for newlines."""
    person = load(LD / "activitypub.academy" / "actor-brauca_darradiul.json")
    pem = person["publicKey"]["publicKeyPem"]
    head, _, rest = pem.partition("----- ")
    body, _, tail = rest.partition(" -----END")
    pem = f"{head}-----\n{body.replace(' ', chr(10))}\n-----END{tail}"
    return store_actor(person["id"], person["publicKey"]["id"], pem, person)


def academy_create() -> dict:
    return load(LD / "activitypub.academy" / "create-note-signed.json")


@pytest.mark.django_db
class TestUnsignedParts:
    def test_academy_create_is_accepted(self, client, demo, relay, brauca):
        response = deliver(client, INBOX, academy_create(), relay)
        assert response.status_code == 202, response.content
        assert Activity.objects.get().actor == brauca.ap_id

    def test_mention_on_a_relative_id_is_not_signed(self, client, demo, relay, brauca):
        """RDF drops the node (a relative IRI), so the signature still verifies without it:
        it must not reach demo as a mention its author never made."""
        create = academy_create()
        create["tag"] = [{"id": "x", "type": "Mention", "href": "http://testserver/actors/demo"}]
        assert_refused(deliver(client, INBOX, create, relay), 401, "owner_mismatch")

    def test_blank_node_clique_is_no_ld_signature(self, client, demo, relay, yukimochi, caplog):
        """Eight blank nodes linked by explicit ids: minutes of canonicalisation unbounded."""
        create = relayed_create()
        create["object"]["tag"] = [
            {"id": f"_:a{n}", "type": "Mention", "tag": [{"id": f"_:a{m}"} for m in range(8)]}
            for n in range(8)
        ]
        with caplog.at_level("INFO", logger="fedsx.inbox"):
            response = deliver(client, INBOX, create, relay)
        assert_refused(response, 401, "owner_mismatch")
        assert "LD signature not checked" in caplog.text


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

    def test_forwarder_cannot_claim_the_actors_activity_id(self, client, demo, relay, keyserver):
        """The origin confirms the note, not the Create's id: a forwarder naming it after
        dave's future Delete must not make that Delete a repeat."""
        origin = keyserver.origin
        keyserver.serve("/users/dave/statuses/1", note(origin))
        delete_id = f"{origin}/users/dave/statuses/1#delete"
        forged = {**forwarded_create(origin), "id": delete_id}
        assert deliver(client, INBOX, forged, relay).status_code == 202
        assert deliver(client, INBOX, forged, relay).status_code == 202
        assert stored_counts() == (1, 1)  # kept without an id, deduplicated by content
        assert Activity.objects.get().ap_id is None
        dave = remote_sender(f"{origin}/users/dave", label="dave")
        delete = {
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": delete_id,
            "type": "Delete",
            "actor": dave.ap_id,
            "object": {"id": note(origin)["id"], "type": "Tombstone"},
            "to": ["https://www.w3.org/ns/activitystreams#Public"],
        }
        assert deliver(client, INBOX, delete, dave).status_code == 202
        assert Activity.objects.get(ap_id=delete_id).type == "Delete"
        assert stored_counts() == (2, 2)

    def test_origin_fetches_are_rate_limited_per_host(
        self, client, demo, relay, keyserver, settings
    ):
        settings.FEDSX = {
            **settings.FEDSX,
            "KEY_FETCH_BURST": 2,
            "KEY_FETCHES_PER_HOST_PER_MINUTE": 1,
        }
        origin = keyserver.origin
        keyserver.serve("/users/dave/statuses/1", note(origin))
        for _ in range(2):
            assert deliver(client, INBOX, forwarded_create(origin), relay).status_code == 202
        response = deliver(client, INBOX, forwarded_create(origin), relay)
        assert response.status_code == 503, response.content
        assert json.loads(response.content)["error"] == "origin_unavailable"
        assert response["Retry-After"]
        assert keyserver.hits["/users/dave/statuses/1"] == 2
        assert stored_counts() == (1, 1)

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

    def test_create_cannot_wrap_an_activity_of_the_actor(self, client, demo, relay, keyserver):
        origin = keyserver.origin
        follow = {
            "id": f"{origin}/users/dave/follows/1",
            "type": "Follow",
            "actor": f"{origin}/users/dave",
            "object": "http://testserver/actors/demo",
        }
        keyserver.serve("/users/dave/follows/1", follow)
        create = {**forwarded_create(origin), "object": follow}
        assert_refused(deliver(client, INBOX, create, relay), 401, "origin_mismatch")

    def test_create_of_the_actor_itself_is_refused(self, client, demo, relay, keyserver):
        origin = keyserver.origin
        dave = dave_document(origin, "z6Mk")
        keyserver.serve("/users/dave", dave)
        create = {**forwarded_create(origin), "object": dave["id"]}
        assert_refused(deliver(client, INBOX, create, relay), 401, "origin_mismatch")
        update = {**create, "type": "Update"}
        assert deliver(client, INBOX, update, relay).status_code == 202

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
