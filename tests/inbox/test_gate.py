"""Every path through the inbox gate, through the real view: accepted once, or refused with
its reason and nothing stored."""

import json
import logging
from datetime import timedelta

import pytest
from django.utils import timezone

from fedsx.models import Activity, DomainBlock, Follow, InboxEntry

from .helpers import deliver, keypair, load_activity, meta, remote_sender, stored_counts

INBOX = "/actors/demo/inbox"


def follow(sender, target="http://testserver/actors/demo", n=1):
    return {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{sender.ap_id}#follows/{n}",
        "type": "Follow",
        "actor": sender.ap_id,
        "object": target,
    }


def assert_refused(response, status, code):
    assert response.status_code == status, response.content
    body = json.loads(response.content)
    assert body["error"] == code, body
    assert body["detail"]
    assert stored_counts() == (0, 0)


@pytest.mark.django_db
class TestAccepted:
    def test_signed_follow_is_appended_once(self, client, demo, bob_remote):
        response = deliver(client, INBOX, follow(bob_remote), bob_remote)
        assert response.status_code == 202, response.content
        entry = InboxEntry.objects.get()
        assert (entry.actor, entry.seq) == (demo, 1)
        assert entry.activity.type == "Follow"
        assert entry.activity.actor == bob_remote.ap_id
        assert Follow.objects.get().state == Follow.State.PENDING

    def test_repeat_delivery_adds_nothing(self, client, demo, bob_remote):
        for _ in range(3):
            assert deliver(client, INBOX, follow(bob_remote), bob_remote).status_code == 202
        assert stored_counts() == (1, 1)

    def test_sequence_numbers_are_per_actor_and_gap_free(self, client, demo, alice, bob_remote):
        for n in range(1, 4):
            deliver(client, INBOX, follow(bob_remote, n=n), bob_remote)
        deliver(client, "/actors/alice/inbox", follow(bob_remote, alice.ap_id, n=9), bob_remote)
        assert list(demo.inbox_entries.values_list("seq", flat=True).order_by("seq")) == [1, 2, 3]
        assert list(alice.inbox_entries.values_list("seq", flat=True)) == [1]

    def test_rfc9421_signature_is_accepted(self, client, demo, bob_remote):
        response = deliver(client, INBOX, follow(bob_remote), bob_remote, rfc9421=True)
        assert response.status_code == 202, response.content
        assert stored_counts() == (1, 1)

    @pytest.mark.parametrize(
        "content_type",
        [
            'application/ld+json; profile="https://www.w3.org/ns/activitystreams"',
            "application/json",
            "application/activity+json; charset=utf-8",
        ],
    )
    def test_accepted_content_types(self, client, demo, bob_remote, content_type):
        response = deliver(client, INBOX, follow(bob_remote), bob_remote, content_type=content_type)
        assert response.status_code == 202, response.content

    def test_activity_without_id_is_deduplicated_by_content(self, client, demo, bob_remote):
        delete = {
            "type": "Delete",
            "actor": bob_remote.ap_id,
            "object": "https://remote.example/statuses/1",
            "to": [demo.ap_id],
        }
        for _ in range(2):
            assert deliver(client, INBOX, delete, bob_remote).status_code == 202
        activity = Activity.objects.get()
        assert activity.ap_id is None
        assert InboxEntry.objects.count() == 1

    def test_undo_follow_removes_the_follow(self, client, demo, bob_remote):
        deliver(client, INBOX, follow(bob_remote), bob_remote)
        undo = {
            "id": f"{bob_remote.ap_id}#undo/1",
            "type": "Undo",
            "actor": bob_remote.ap_id,
            "object": follow(bob_remote),
        }
        assert deliver(client, INBOX, undo, bob_remote).status_code == 202
        assert not Follow.objects.exists()
        assert InboxEntry.objects.count() == 2


@pytest.mark.django_db
class TestSharedInbox:
    def test_fan_out_to_addressed_local_actors(self, client, demo, alice, bob_remote):
        from fedsx.actors import create_local_actor

        create_local_actor("carol")
        note = {
            "id": "https://remote.example/create/1",
            "type": "Create",
            "actor": bob_remote.ap_id,
            "to": [demo.ap_id],
            "cc": ["https://www.w3.org/ns/activitystreams#Public", alice.ap_id],
            "object": {"id": "https://remote.example/note/1", "type": "Note"},
        }
        assert deliver(client, "/inbox", note, bob_remote).status_code == 202
        recipients = set(InboxEntry.objects.values_list("actor__username", flat=True))
        assert recipients == {"demo", "alice"}

    def test_followers_collection_reaches_local_followers(self, client, demo, alice, bob_remote):
        from fedsx.models import Actor

        bob = Actor.objects.get(ap_id=bob_remote.ap_id)
        Follow.objects.create(follower=alice, following=bob, state="accepted")
        Follow.objects.create(follower=demo, following=bob, state="pending")
        note = {
            "id": "https://remote.example/create/2",
            "type": "Create",
            "actor": bob_remote.ap_id,
            "to": [f"{bob_remote.ap_id}/followers"],
            "object": {"id": "https://remote.example/note/2", "type": "Note"},
        }
        assert deliver(client, "/inbox", note, bob_remote).status_code == 202
        assert list(InboxEntry.objects.values_list("actor__username", flat=True)) == ["alice"]
        # delivered again, to the shared inbox or a personal one: still one entry each
        deliver(client, "/inbox", note, bob_remote)
        deliver(client, "/actors/alice/inbox", note, bob_remote)
        assert InboxEntry.objects.count() == 1

    def test_the_sender_declared_followers_collection_counts_and_no_actor_twice(
        self, client, demo, alice, bob_remote
    ):
        from fedsx.models import Actor

        bob = Actor.objects.get(ap_id=bob_remote.ap_id)
        bob.followers_url = f"{bob.ap_id}/fans"
        bob.save()
        Follow.objects.create(follower=alice, following=bob, state="accepted")
        Follow.objects.create(follower=demo, following=bob, state="accepted")

        def note(n: int, to: list[str]) -> dict:
            return {
                "id": f"https://remote.example/create/fans-{n}",
                "type": "Create",
                "actor": bob_remote.ap_id,
                "to": to,
                "object": {"id": f"https://remote.example/note/fans-{n}", "type": "Note"},
            }

        # demo is addressed and a follower: one entry; alice as a follower
        response = deliver(client, "/inbox", note(1, [demo.ap_id, bob.followers_url]), bob_remote)
        assert response.status_code == 202
        assert sorted(InboxEntry.objects.values_list("actor__username", flat=True)) == [
            "alice",
            "demo",
        ]
        # the conventional /followers is not bob's collection: it reaches no follower
        response = deliver(client, "/inbox", note(2, [f"{bob.ap_id}/followers"]), bob_remote)
        assert response.status_code == 202
        assert InboxEntry.objects.count() == 2


@pytest.mark.django_db
class TestRefused:
    def test_unsigned_request(self, client, demo, bob_remote):
        response = client.post(
            INBOX, json.dumps(follow(bob_remote)), content_type="application/activity+json"
        )
        assert_refused(response, 401, "missing_signature")

    def test_forged_signature_is_refused_and_stored_nowhere(self, client, demo, bob_remote):
        forger = remote_sender("https://evil.example/users/mallory", label="forger")
        forged = type(bob_remote)(bob_remote.ap_id, bob_remote.key_id, forger.private_pem, "")
        response = deliver(client, INBOX, follow(bob_remote), forged)
        assert_refused(response, 401, "bad_signature")

    def test_body_swapped_under_a_valid_signature(self, client, demo, bob_remote):
        swapped = json.dumps({**follow(bob_remote), "object": "http://testserver/actors/x"})
        response = deliver(client, INBOX, follow(bob_remote), bob_remote, body=swapped.encode())
        assert_refused(response, 400, "digest_mismatch")

    def test_digest_recomputed_for_a_swapped_body(self, client, demo, bob_remote):
        import base64
        import hashlib

        swapped = json.dumps({**follow(bob_remote), "id": "https://remote.example/other"}).encode()
        digest = "SHA-256=" + base64.b64encode(hashlib.sha256(swapped).digest()).decode()
        response = deliver(
            client, INBOX, follow(bob_remote), bob_remote, body=swapped, extra={"Digest": digest}
        )
        assert_refused(response, 401, "bad_signature")

    def test_replayed_request_with_an_old_date(self, client, demo, bob_remote):
        then = timezone.now() - timedelta(hours=2)
        response = deliver(client, INBOX, follow(bob_remote), bob_remote, now=then)
        assert response.status_code == 401
        assert stored_counts() == (0, 0)

    def test_date_too_far_in_the_future(self, client, demo, bob_remote):
        later = timezone.now() + timedelta(minutes=10)
        response = deliver(client, INBOX, follow(bob_remote), bob_remote, now=later)
        assert response.status_code == 401
        assert stored_counts() == (0, 0)

    def test_key_owned_by_another_actor(self, client, demo, bob_remote):
        remote_sender("https://remote.example/users/eve", label="eve")
        activity = {**follow(bob_remote), "actor": "https://remote.example/users/eve"}
        response = deliver(client, INBOX, activity, bob_remote)
        assert_refused(response, 401, "owner_mismatch")

    def test_spoofed_note_from_security_negative_fixtures(self, client, demo, bob_remote):
        spoof = load_activity("security-negative/spoofed-note.json")
        remote_sender(spoof["actor"], label="rin")  # the real owner exists, bob signs
        response = deliver(client, INBOX, spoof, bob_remote)
        assert_refused(response, 401, "owner_mismatch")

    def test_blocked_domain_before_any_fetch(self, client, demo):
        DomainBlock.objects.create(domain="blocked.example")
        private_pem, public_pem = keypair()
        from .helpers import Sender

        sender = Sender(
            "https://sub.blocked.example/u/x",
            "https://sub.blocked.example/u/x#k",
            private_pem,
            public_pem,
        )
        response = deliver(client, INBOX, follow(sender), sender)
        assert_refused(response, 403, "domain_blocked")

    def test_blocked_domain_with_a_cached_key(self, client, demo, bob_remote):
        DomainBlock.objects.create(domain="remote.example")
        assert_refused(
            deliver(client, INBOX, follow(bob_remote), bob_remote), 403, "domain_blocked"
        )

    def test_two_mib_body(self, client, demo, bob_remote):
        big = {**follow(bob_remote), "padding": "x" * (2 * 1024 * 1024)}
        assert_refused(deliver(client, INBOX, big, bob_remote), 413, "too_large")

    def test_body_limit_is_a_setting(self, client, demo, bob_remote, settings):
        settings.FEDSX = {**settings.FEDSX, "MAX_BODY_BYTES": 100}
        assert_refused(deliver(client, INBOX, follow(bob_remote), bob_remote), 413, "too_large")

    def test_non_json(self, client, demo, bob_remote):
        assert_refused(deliver(client, INBOX, b"not json {", bob_remote), 400, "malformed_json")

    def test_json_not_an_object(self, client, demo, bob_remote):
        assert_refused(deliver(client, INBOX, b"[1, 2]", bob_remote), 400, "not_an_object")

    def test_json_nested_ten_thousand_deep(self, client, demo, bob_remote):
        deep = b'{"type":"Create","actor":"x","o":' + b"[" * 10_000 + b"]" * 10_000 + b"}"
        assert_refused(deliver(client, INBOX, deep, bob_remote), 400, "malformed_json")

    @pytest.mark.parametrize("missing", ["type", "actor"])
    def test_missing_field(self, client, demo, bob_remote, missing):
        activity = follow(bob_remote)
        del activity[missing]
        assert_refused(deliver(client, INBOX, activity, bob_remote), 400, f"missing_{missing}")

    def test_wrong_content_type(self, client, demo, bob_remote):
        response = deliver(client, INBOX, follow(bob_remote), bob_remote, content_type="text/plain")
        assert_refused(response, 415, "unsupported_media_type")

    def test_unknown_local_actor(self, client, demo, bob_remote):
        response = deliver(client, "/actors/nobody/inbox", follow(bob_remote), bob_remote)
        assert_refused(response, 404, "not_found")

    def test_get_is_not_allowed(self, client, demo):
        response = client.get(INBOX)
        assert response.status_code == 405
        assert json.loads(response.content)["error"] == "method_not_allowed"


@pytest.mark.django_db
def test_nul_in_a_string_is_refused(client, demo, bob_remote):
    activity = {**follow(bob_remote), "summary": "a\u0000b"}
    assert_refused(deliver(client, INBOX, activity, bob_remote), 400, "unsupported_content")


@pytest.mark.django_db
def test_non_numeric_content_length_is_refused(client, demo, bob_remote):
    response = deliver(
        client, INBOX, follow(bob_remote), bob_remote, extra={"Content-Length": "12abc"}
    )
    assert_refused(response, 400, "bad_content_length")


@pytest.mark.django_db
def test_a_refusal_is_logged_once_with_its_reason_and_no_key_material(
    client, demo, bob_remote, caplog
):
    forger = remote_sender("https://evil.example/users/mallory", label="forger")
    forged = type(bob_remote)(bob_remote.ap_id, bob_remote.key_id, forger.private_pem, "")
    with caplog.at_level("INFO"):
        deliver(client, INBOX, follow(bob_remote), forged)
    records = [r for r in caplog.records if r.levelno >= logging.INFO]
    assert len(records) == 1
    message = records[0].getMessage()
    assert "bad_signature" in message
    assert "PRIVATE" not in message and "PUBLIC KEY" not in message


@pytest.mark.django_db
def test_another_sender_cannot_claim_an_activity_id(client, demo, bob_remote):
    """An id names an activity of its sender: mallory using bob's id shadows nothing."""
    mallory = remote_sender("https://evil.example/users/mallory", label="mallory")
    bobs_id = "https://remote.example/users/bob/statuses/9/activity"
    squat = {
        "id": bobs_id,
        "type": "Create",
        "actor": mallory.ap_id,
        "to": [demo.ap_id],
        "object": {"id": "https://evil.example/n/1", "type": "Note", "content": "fake"},
    }
    real = {
        "id": bobs_id,
        "type": "Create",
        "actor": bob_remote.ap_id,
        "to": [demo.ap_id],
        "object": {"id": "https://remote.example/n/9", "type": "Note", "content": "real"},
    }
    assert deliver(client, INBOX, squat, mallory).status_code == 202
    assert deliver(client, INBOX, real, bob_remote).status_code == 202
    stored = {a.actor: a.payload["object"]["content"] for a in Activity.objects.all()}
    assert stored == {mallory.ap_id: "fake", bob_remote.ap_id: "real"}
    assert InboxEntry.objects.filter(activity__actor=bob_remote.ap_id).count() == 1


@pytest.mark.django_db
def test_a_delivery_signed_for_another_server_cannot_be_replayed_here(client, demo, bob_remote):
    response = post_signed_for(
        client, "https://other.example/actors/demo/inbox", follow(bob_remote), bob_remote
    )
    assert_refused(response, 401, "wrong_host")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "extra, code",
    [
        ({"n": 2**60}, "unsupported_json"),  # no RFC 8785 form: beyond IEEE-754 integers
        ({"id": "https://remote.example/" + "x" * 600}, "id_too_long"),
    ],
    ids=["huge-integer", "long-id"],
)
def test_valid_json_we_cannot_store_is_a_400(client, demo, bob_remote, extra, code):
    activity = {**follow(bob_remote), **extra}
    assert_refused(deliver(client, INBOX, activity, bob_remote), 400, code)


@pytest.mark.django_db
def test_json_nested_past_the_canonicaliser_is_a_400(client, demo, bob_remote):
    deep = b'{"type":"Create","actor":"%s","o":' % bob_remote.ap_id.encode()
    deep += b"[" * 300 + b"]" * 300 + b"}"
    response = deliver(client, INBOX, deep, bob_remote)
    assert response.status_code == 400
    assert stored_counts() == (0, 0)


@pytest.mark.django_db
def test_a_trailing_dot_does_not_escape_a_domain_block(client, demo):
    DomainBlock.objects.create(domain="Blocked.Example.")
    assert DomainBlock.objects.get().domain == "blocked.example"
    private_pem, public_pem = keypair()
    from .helpers import Sender

    sender = Sender(
        "https://blocked.example./u/x", "https://blocked.example./u/x#k", private_pem, public_pem
    )
    assert_refused(deliver(client, INBOX, follow(sender), sender), 403, "domain_blocked")


@pytest.mark.django_db
def test_a_deleted_local_actor_is_not_served_from_the_cache(client, demo, bob_remote):
    assert deliver(client, INBOX, follow(bob_remote), bob_remote).status_code == 202
    demo.delete()
    response = deliver(client, INBOX, follow(bob_remote, n=2), bob_remote)
    assert response.status_code == 404


@pytest.mark.django_db
def test_a_host_with_the_default_port_is_this_node(client, demo, bob_remote):
    response = post_signed_for(
        client, "http://TestServer:80/actors/demo/inbox", follow(bob_remote), bob_remote
    )
    assert response.status_code == 202, response.content


def post_signed_for(client, url: str, activity: dict, sender):
    """POST to the demo inbox a request signed as if for ``url`` (its host may differ)."""
    from fedsx import httpsig

    body = json.dumps(activity).encode()
    headers = {"Content-Type": "application/activity+json"}
    headers |= httpsig.sign_cavage("POST", url, headers, body, sender.key_id, sender.private_pem)
    return client.generic(
        "POST", INBOX, body, content_type="application/activity+json", **meta(headers)
    )
