"""Key look-up through the real view: fetched over loopback HTTP, cached, rotated, refused."""

import json

import pytest

from fedsx import keys
from fedsx.models import Actor

from .helpers import Sender, deliver, keypair, load_activity, stored_counts
from .test_gate import INBOX, assert_refused, follow


def assert_refused_keeps(response, status, code):
    """A refusal after an earlier accepted delivery: only the status and code are checked."""
    assert response.status_code == status, response.content
    assert json.loads(response.content)["error"] == code


def actor_document(origin: str, name: str, public_pem: str, **extra) -> dict:
    ap_id = f"{origin}/users/{name}"
    return {
        "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"],
        "id": ap_id,
        "type": "Person",
        "preferredUsername": name,
        "inbox": f"{ap_id}/inbox",
        "followers": f"{ap_id}/followers",
        "endpoints": {"sharedInbox": f"{origin}/inbox"},
        "publicKey": {"id": f"{ap_id}#main-key", "owner": ap_id, "publicKeyPem": public_pem},
        **extra,
    }


def sender_at(origin: str, name: str, label: str = "default") -> Sender:
    private_pem, public_pem = keypair(label)
    ap_id = f"{origin}/users/{name}"
    return Sender(ap_id, f"{ap_id}#main-key", private_pem, public_pem)


@pytest.mark.django_db
class TestFetch:
    def test_unknown_key_is_fetched_and_stored(self, client, demo, keyserver):
        sender = sender_at(keyserver.origin, "bob")
        keyserver.serve("/users/bob", actor_document(keyserver.origin, "bob", sender.public_pem))
        assert deliver(client, INBOX, follow(sender), sender).status_code == 202
        actor = Actor.objects.get(ap_id=sender.ap_id)
        assert (actor.key_id, actor.username, actor.inbox_url) == (
            sender.key_id,
            "bob",
            f"{sender.ap_id}/inbox",
        )
        # the second delivery uses the cache (process), the third the database
        deliver(client, INBOX, follow(sender, n=2), sender)
        keys.forget()
        deliver(client, INBOX, follow(sender, n=3), sender)
        assert keyserver.hits["/users/bob"] == 1
        assert stored_counts() == (3, 3)

    def test_key_document_with_owner(self, client, demo, keyserver):
        """GoToSocial-style: the keyId names a key document whose owner is the actor."""
        private_pem, public_pem = keypair()
        ap_id = f"{keyserver.origin}/users/gts"
        sender = Sender(ap_id, f"{ap_id}/main-key", private_pem, public_pem)
        keyserver.serve(
            "/users/gts/main-key", {"id": sender.key_id, "owner": ap_id, "publicKeyPem": public_pem}
        )
        owner = actor_document(keyserver.origin, "gts", public_pem)
        owner["publicKey"]["id"] = sender.key_id
        keyserver.serve("/users/gts", owner)
        assert deliver(client, INBOX, follow(sender), sender).status_code == 202
        assert Actor.objects.get(ap_id=ap_id).key_id == sender.key_id

    def test_key_document_whose_owner_does_not_list_it(self, client, demo, keyserver):
        """A key document can be planted on a host (an upload, an open redirect): it only
        counts if the owner's own document lists that key."""
        private_pem, public_pem = keypair("planted")
        ap_id = f"{keyserver.origin}/users/bob"
        key_id = f"{keyserver.origin}/media/planted.json"
        keyserver.serve(
            "/media/planted.json", {"id": key_id, "owner": ap_id, "publicKeyPem": public_pem}
        )
        keyserver.serve("/users/bob", actor_document(keyserver.origin, "bob", keypair()[1]))
        sender = Sender(ap_id, key_id, private_pem, public_pem)
        response = deliver(client, INBOX, follow(sender), sender)
        assert_refused(response, 401, "key_owner_mismatch")
        assert not Actor.objects.filter(ap_id=ap_id).exists()

    def test_redirect_to_another_host_is_not_followed(self, client, demo, keyserver, settings):
        other = f"http://localhost:{keyserver.port}"
        allow = f"127.0.0.1:{keyserver.port},localhost:{keyserver.port}"
        settings.FEDSX = {**settings.FEDSX, "FETCH_ALLOWLIST": allow}
        sender = sender_at(keyserver.origin, "bob")
        keyserver.serve("/users/bob", f"{other}/users/bob", status=302)
        assert_refused(deliver(client, INBOX, follow(sender), sender), 401, "key_refused_url")

    def test_a_fetched_key_is_stored_only_after_it_verified(self, client, demo, keyserver):
        sender = sender_at(keyserver.origin, "bob")
        forger = sender_at(keyserver.origin, "bob", label="forger")
        keyserver.serve("/users/bob", actor_document(keyserver.origin, "bob", sender.public_pem))
        for n in range(3):
            assert deliver(client, INBOX, follow(forger, n=n), forger).status_code == 401
        assert not Actor.objects.filter(ap_id=sender.ap_id).exists()
        assert keyserver.hits["/users/bob"] == 1  # unverifiable requests: one fetch
        assert deliver(client, INBOX, follow(sender, n=9), sender).status_code == 202
        assert Actor.objects.get(ap_id=sender.ap_id).public_key_pem == sender.public_pem

    def test_internal_key_id_is_refused_without_the_allowlist(self, client, demo, settings):
        settings.FEDSX = {**settings.FEDSX, "FETCH_ALLOWLIST": ""}
        sender = sender_at("http://127.0.0.1:9", "bob")
        assert_refused(deliver(client, INBOX, follow(sender), sender), 401, "key_refused_url")

    @pytest.mark.parametrize(
        "host", ["localhost", "10.0.0.1", "169.254.169.254", "[::1]", "192.168.1.1", "0.0.0.0"]
    )
    def test_other_internal_addresses_are_refused(self, client, demo, host):
        sender = sender_at(f"http://{host}", "bob")
        assert_refused(deliver(client, INBOX, follow(sender), sender), 401, "key_refused_url")

    def test_redirect_to_an_internal_address_is_refused(self, client, demo, keyserver):
        sender = sender_at(keyserver.origin, "bob")
        keyserver.serve("/users/bob", "http://169.254.169.254/latest/meta-data/", status=302)
        assert_refused(deliver(client, INBOX, follow(sender), sender), 401, "key_refused_url")

    def test_redirects_are_followed_a_few_times(self, client, demo, keyserver):
        sender = sender_at(keyserver.origin, "bob")
        keyserver.serve("/users/bob", f"{keyserver.origin}/moved/bob", status=301)
        keyserver.serve("/moved/bob", actor_document(keyserver.origin, "bob", sender.public_pem))
        assert deliver(client, INBOX, follow(sender), sender).status_code == 202
        keyserver.serve("/users/loop", f"{keyserver.origin}/users/loop", status=302)
        looping = sender_at(keyserver.origin, "loop")
        response = deliver(client, INBOX, follow(looping), looping)
        assert_refused_keeps(response, 401, "key_too_many_redirects")

    def test_oversized_key_document_is_refused(self, client, demo, keyserver, settings):
        settings.FEDSX = {**settings.FEDSX, "FETCH_MAX_BYTES": 500}
        sender = sender_at(keyserver.origin, "bob")
        keyserver.serve("/users/bob", actor_document(keyserver.origin, "bob", sender.public_pem))
        assert_refused(deliver(client, INBOX, follow(sender), sender), 401, "key_too_large")

    def test_temporary_failure_answers_503_with_retry_after(self, client, demo, keyserver):
        sender = sender_at(keyserver.origin, "bob")
        keyserver.serve("/users/bob", {"error": "busy"}, status=502)
        response = deliver(client, INBOX, follow(sender), sender)
        assert_refused(response, 503, "key_unavailable")
        assert int(response["Retry-After"]) > 0

    def test_a_server_that_could_not_be_reached_is_not_tried_again_at_once(
        self, client, demo, settings
    ):
        closed = "127.0.0.1:9"  # nothing listens there
        settings.FEDSX = {**settings.FEDSX, "FETCH_ALLOWLIST": closed}
        bob, carol = sender_at(f"http://{closed}", "bob"), sender_at(f"http://{closed}", "carol")
        first = deliver(client, INBOX, follow(bob), bob)
        assert_refused(first, 503, "key_unavailable")
        assert "ConnectError" in json.loads(first.content)["detail"]
        # another key at the same place: refused without a connection attempt
        second = deliver(client, INBOX, follow(carol), carol)
        assert_refused(second, 503, "key_unavailable")
        assert "moments ago" in json.loads(second.content)["detail"]

    def test_a_sender_cannot_make_us_stop_fetching_from_a_healthy_host(
        self, client, demo, keyserver
    ):
        # A keyId on the victim host whose path answers 5xx, or over the wrong scheme: it
        # concerns that path or that scheme only, and bob's own key is fetched as usual.
        keyserver.serve("/broken", {"error": "busy"}, status=502)
        mallory = sender_at(keyserver.origin, "mallory")
        broken = Sender(mallory.ap_id, f"{keyserver.origin}/broken", mallory.private_pem, "")
        assert_refused(deliver(client, INBOX, follow(broken), broken), 503, "key_unavailable")
        https = keyserver.origin.replace("http://", "https://")
        wrong_scheme = Sender(mallory.ap_id, f"{https}/x", mallory.private_pem, "")
        assert deliver(client, INBOX, follow(wrong_scheme), wrong_scheme).status_code == 503
        bob = sender_at(keyserver.origin, "bob")
        keyserver.serve("/users/bob", actor_document(keyserver.origin, "bob", bob.public_pem))
        assert deliver(client, INBOX, follow(bob), bob).status_code == 202

    def test_unreachable_key_server_answers_503(self, client, demo, keyserver, settings):
        closed = "127.0.0.1:9"
        settings.FEDSX = {**settings.FEDSX, "FETCH_ALLOWLIST": closed}
        sender = sender_at(f"http://{closed}", "bob")
        response = deliver(client, INBOX, follow(sender), sender)
        assert_refused(response, 503, "key_unavailable")

    def test_gone_key_is_401(self, client, demo, keyserver):
        sender = sender_at(keyserver.origin, "bob")
        keyserver.serve("/users/bob", {}, status=410)
        assert_refused(deliver(client, INBOX, follow(sender), sender), 401, "key_gone")

    def test_delete_of_a_gone_actor_is_202_and_stored_nowhere(self, client, demo, keyserver):
        sender = sender_at(keyserver.origin, "bob")
        keyserver.serve("/users/bob", {}, status=410)
        delete = {
            "id": f"{sender.ap_id}#delete",
            "type": "Delete",
            "actor": sender.ap_id,
            "object": sender.ap_id,
            "to": ["https://www.w3.org/ns/activitystreams#Public"],
        }
        response = deliver(client, INBOX, delete, sender)
        assert response.status_code == 202
        assert stored_counts() == (0, 0)
        assert not Actor.objects.filter(ap_id=sender.ap_id).exists()
        # an actor we never knew: answered without asking its server (the Delete flood)
        assert keyserver.hits["/users/bob"] == 0

    def test_self_delete_signed_with_a_corrupt_stored_key_is_401_not_503(self, client, demo):
        sender = sender_at("https://remote.example", "bob")
        Actor.objects.create(
            ap_id=sender.ap_id,
            username="bob",
            domain="remote.example",
            key_id=sender.key_id,
            public_key_pem="-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----",
        )
        delete = {"type": "Delete", "actor": sender.ap_id, "object": sender.ap_id}
        assert_refused(deliver(client, INBOX, delete, sender), 401, "key_bad_key")

    def test_delete_of_a_known_actor_whose_key_is_gone_is_202_after_one_fetch(
        self, client, demo, keyserver
    ):
        sender = sender_at(keyserver.origin, "bob")
        Actor.objects.create(ap_id=sender.ap_id, username="bob", domain="127.0.0.1")
        keyserver.serve("/users/bob", {}, status=410)
        delete = {"type": "Delete", "actor": sender.ap_id, "object": sender.ap_id}
        assert deliver(client, INBOX, delete, sender).status_code == 202
        assert keyserver.hits["/users/bob"] == 1
        assert stored_counts() == (0, 0)

    def test_delete_of_another_actor_with_a_gone_key_is_401(self, client, demo, keyserver):
        sender = sender_at(keyserver.origin, "bob")
        keyserver.serve("/users/bob", {}, status=410)
        delete = {"type": "Delete", "actor": sender.ap_id, "object": f"{sender.ap_id}x"}
        assert_refused(deliver(client, INBOX, delete, sender), 401, "key_gone")

    def test_key_claimed_for_an_owner_on_another_host(self, client, demo, keyserver, settings):
        """security-negative/actor-keyid-from-other-actor.json, served over loopback: an actor
        document at one host whose key names an owner elsewhere is refused."""
        evil = load_activity("security-negative/actor-keyid-from-other-actor.json")
        private_pem, public_pem = keypair("evil")
        owner = f"http://localhost:{keyserver.port}/users/evil"
        key_id = f"{keyserver.origin}/users/admin#main-key"
        evil |= {
            "id": owner,
            "publicKey": {"id": key_id, "owner": owner, "publicKeyPem": public_pem},
        }
        keyserver.serve("/users/admin", evil)
        sender = Sender(owner, key_id, private_pem, public_pem)
        response = deliver(client, INBOX, follow(sender), sender)
        assert response.status_code == 401
        assert json.loads(response.content)["error"] in {"key_owner_mismatch", "key_not_found"}
        assert stored_counts() == (0, 0)


@pytest.mark.django_db
class TestRotation:
    def test_rotated_key_is_refetched_once(self, client, demo, keyserver):
        old = sender_at(keyserver.origin, "bob", label="old")
        new = sender_at(keyserver.origin, "bob", label="new")
        keyserver.serve("/users/bob", actor_document(keyserver.origin, "bob", old.public_pem))
        assert deliver(client, INBOX, follow(old), old).status_code == 202
        Actor.objects.filter(ap_id=old.ap_id).update(key_fetched_at=None)  # long ago
        keys.forget()
        keyserver.serve("/users/bob", actor_document(keyserver.origin, "bob", new.public_pem))
        assert deliver(client, INBOX, follow(new, n=2), new).status_code == 202
        assert keyserver.hits["/users/bob"] == 2
        assert Actor.objects.get(ap_id=new.ap_id).public_key_pem == new.public_pem

    def test_refetch_is_rate_limited(self, client, demo, keyserver):
        sender = sender_at(keyserver.origin, "bob")
        forger = sender_at(keyserver.origin, "bob", label="forger")
        keyserver.serve("/users/bob", actor_document(keyserver.origin, "bob", sender.public_pem))
        assert deliver(client, INBOX, follow(sender), sender).status_code == 202
        for n in range(5):
            response = deliver(client, INBOX, follow(forger, n=10 + n), forger)
            assert response.status_code == 401
        assert keyserver.hits["/users/bob"] == 1  # fetched just now: no refetch for forgeries


@pytest.mark.parametrize(
    "address",
    ["64:ff9b::a9fe:a9fe", "2002:a9fe:a9fe::", "::7f00:1", "fec0::1", "::ffff:10.0.0.1"],
)
def test_ipv6_forms_of_internal_addresses_are_internal(address):
    from fedsx.client import is_internal

    assert is_internal(address)


@pytest.mark.parametrize("address", ["64:ff9b::808:808", "2002:808:808::", "2606:4700::1111"])
def test_public_ipv6_addresses_are_not_internal(address):
    from fedsx.client import is_internal

    assert not is_internal(address)
