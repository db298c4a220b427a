"""fedsx.outbox.post: minting, wrapping, recipients, what is stored, what is refused."""

from __future__ import annotations

import json

import pytest
from django.db import transaction

from fedsx import outbox
from fedsx.errors import FederationError
from fedsx.models import Activity, Delivery, Follow, InboxEntry, OutboxEntry
from fedsx.vocab import PUBLIC

from .conftest import follows, remote_actor

AP = "application/activity+json"


def note(**fields) -> dict:
    return {"type": "Note", "content": "<p>hello</p>", **fields}


def counts() -> tuple[int, ...]:
    return (
        Activity.objects.count(),
        OutboxEntry.objects.count(),
        Delivery.objects.count(),
        InboxEntry.objects.count(),
        Follow.objects.count(),
    )


@pytest.mark.django_db
def test_a_bare_object_is_wrapped_in_a_create_as_mastodon_does(demo):
    posted = outbox.post(demo, note(to=[PUBLIC], cc=[demo.followers_url]))
    create = posted.payload
    assert create["type"] == "Create"
    assert create["id"].startswith(f"{demo.ap_id}/activities/")
    assert create["actor"] == demo.ap_id
    inner = create["object"]
    assert inner["id"].startswith(f"{demo.ap_id}/objects/")
    assert inner["attributedTo"] == demo.ap_id
    assert inner["published"] == create["published"]
    assert create["to"] == [PUBLIC] and create["cc"] == [demo.followers_url]
    assert posted.object_id == inner["id"]
    entry = OutboxEntry.objects.get(activity=posted)
    assert (entry.seq, entry.public) == (1, True)


@pytest.mark.django_db
def test_an_activity_keeps_its_type_and_gets_id_actor_published(demo):
    posted = outbox.post("demo", {"type": "Like", "object": "https://r.example/n/1"})
    assert posted.type == "Like"
    assert posted.payload["object"] == "https://r.example/n/1"
    assert posted.payload["published"].endswith("Z")
    assert OutboxEntry.objects.get(activity=posted).public is False


@pytest.mark.django_db
def test_posted_activity_and_object_are_served_at_their_ids(client, demo):
    posted = outbox.post(demo, note(to=[PUBLIC]))
    for url in (posted.ap_id, posted.object_id):
        path = url.removeprefix("http://testserver")
        response = client.get(path, HTTP_ACCEPT=AP)
        assert response.status_code == 200, response.content
        assert json.loads(response.content)["id"] == url
        page = client.get(path, HTTP_ACCEPT="text/html")
        assert page.status_code == 200 and b"hello" in page.content
    _, outbox_page = None, client.get("/actors/demo/outbox?page=true", HTTP_ACCEPT=AP)
    items = json.loads(outbox_page.content)["orderedItems"]
    assert [item["id"] for item in items] == [posted.ap_id]


@pytest.mark.django_db
def test_a_deleted_object_is_a_tombstone_answered_410(client, demo):
    posted = outbox.post(demo, note(to=[PUBLIC]))
    path = posted.object_id.removeprefix("http://testserver")
    assert client.get(path, HTTP_ACCEPT=AP).status_code == 200
    outbox.post(demo, {"type": "Delete", "object": posted.object_id, "to": [PUBLIC]})
    gone = client.get(path, HTTP_ACCEPT=AP)
    assert gone.status_code == 410
    tombstone = json.loads(gone.content)
    assert (tombstone["id"], tombstone["type"], tombstone["formerType"]) == (
        posted.object_id,
        "Tombstone",
        "Note",
    )
    page = client.get(path, HTTP_ACCEPT="text/html")
    assert page.status_code == 410 and b"hello" not in page.content


@pytest.mark.django_db
def test_a_followers_only_post_is_not_served_nor_listed(client, demo):
    posted = outbox.post(demo, note(to=[demo.followers_url]))
    for url in (posted.ap_id, posted.object_id):
        response = client.get(url.removeprefix("http://testserver"), HTTP_ACCEPT=AP)
        assert response.status_code == 404
    listed = json.loads(client.get("/actors/demo/outbox", HTTP_ACCEPT=AP).content)
    assert listed["totalItems"] == 0


@pytest.mark.django_db
def test_followers_expand_to_one_delivery_per_shared_inbox(demo, bob):
    shared = "https://big.example/inbox"
    on_big = [
        remote_actor(f"https://big.example/u/{i}", inbox=f"https://big.example/u/{i}/inbox",
                     shared_inbox=shared)
        for i in range(3)
    ]  # fmt: skip
    solo = remote_actor("https://solo.example/me", inbox="https://solo.example/me/inbox")
    pending = remote_actor("https://late.example/x", inbox="https://late.example/x/inbox")
    for actor in [*on_big, solo, bob]:
        follows(actor, demo)
    follows(pending, demo, Follow.State.PENDING)

    posted = outbox.post(demo, note(to=[PUBLIC], cc=[demo.followers_url]))

    deliveries = {d.inbox_url: d for d in Delivery.objects.filter(activity=posted)}
    assert set(deliveries) == {shared, solo.inbox_url}
    assert deliveries[shared].recipient is None  # a shared inbox serves many
    assert deliveries[solo.inbox_url].recipient == solo  # a 410 there means solo is gone
    assert {d.status for d in deliveries.values()} == {Delivery.Status.PENDING}
    assert deliveries[shared].host == "big.example"
    # The local follower gets it in its inbox straight away: no HTTP to ourselves.
    assert list(InboxEntry.objects.filter(activity=posted).values_list("actor", flat=True)) == [
        bob.pk
    ]


@pytest.mark.django_db
def test_bto_and_bcc_address_but_are_never_shown(demo):
    secret = remote_actor("https://r.example/secret", inbox="https://r.example/secret/inbox")
    other = remote_actor("https://r.example/other", inbox="https://r.example/other/inbox")
    posted = outbox.post(demo, note(to=[other.ap_id], bcc=[secret.ap_id], bto=[secret.ap_id]))
    assert {d.inbox_url for d in posted.deliveries.all()} == {secret.inbox_url, other.inbox_url}
    stored = Activity.objects.get(pk=posted.pk).payload
    for doc in (stored, stored["object"]):
        assert "bcc" not in doc and "bto" not in doc


@pytest.mark.django_db
def test_the_sender_and_the_public_collection_are_nobodys_inbox(demo):
    posted = outbox.post(demo, note(to=[PUBLIC, "as:Public", demo.ap_id]))
    assert posted.deliveries.count() == 0
    assert InboxEntry.objects.filter(activity=posted).count() == 0


@pytest.mark.django_db
def test_an_address_with_no_inbox_is_a_failed_delivery_that_says_why(demo, settings):
    local_ghost = f"{demo.ap_id.rsplit('/', 1)[0]}/nobody"
    posted = outbox.post(demo, note(to=[local_ghost]))
    (delivery,) = posted.deliveries.all()
    assert delivery.status == Delivery.Status.FAILED
    assert "no local actor" in delivery.last_error


@pytest.mark.django_db
def test_an_undo_waits_for_the_pending_delivery_of_what_it_undoes(demo):
    bob = remote_actor("https://r.example/bob", inbox="https://r.example/bob/inbox")
    follow = outbox.post(demo, {"type": "Follow", "object": bob.ap_id, "to": [bob.ap_id]})
    assert Follow.objects.get(follower=demo, following=bob).state == Follow.State.PENDING
    undo = outbox.post(demo, {"type": "Undo", "object": follow.payload, "to": [bob.ap_id]})
    (first,), (second,) = follow.deliveries.all(), undo.deliveries.all()
    assert second.waits_for == first
    assert not Follow.objects.filter(follower=demo).exists()


@pytest.mark.django_db
def test_a_delete_waits_for_the_create_of_its_object(demo):
    bob = remote_actor("https://r.example/bob", inbox="https://r.example/bob/inbox")
    create = outbox.post(demo, note(to=[bob.ap_id]))
    delete = outbox.post(demo, {"type": "Delete", "object": create.object_id, "to": [bob.ap_id]})
    assert delete.deliveries.get().waits_for == create.deliveries.get()


@pytest.mark.django_db
def test_a_rolled_back_caller_stores_and_sends_nothing(demo):
    bob = remote_actor("https://r.example/bob", inbox="https://r.example/bob/inbox")
    before = counts()
    with pytest.raises(RuntimeError), transaction.atomic():
        outbox.post(demo, note(to=[bob.ap_id]))
        raise RuntimeError("the flow step failed")
    assert counts() == before


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("given", "code"),
    [
        ({"content": "no type"}, "missing_type"),
        ({"type": ""}, "missing_type"),
        ({"type": ["Note"]}, "missing_type"),
        ({"type": "Note", "id": "https://x.example/1"}, "id_given"),
        ({"type": "Like", "actor": "https://x.example/u"}, "wrong_actor"),
        ({"type": "Note", "attributedTo": "https://x.example/u"}, "wrong_actor"),
        ({"type": "Like", "object": "https://x.example/" + "a" * 600}, "id_too_long"),
        ({"type": "Note", "content": float("nan")}, "not_canonical"),
        ({"type": "Note", "content": "\ud800"}, "not_canonical"),
        ({"type": "Note", "content": "x" * 2_000_000}, "too_large"),
    ],
)
def test_what_the_inbox_would_refuse_is_refused_and_nothing_stored(demo, given, code):
    before = counts()
    with pytest.raises(FederationError) as refused:
        outbox.post(demo, given)
    assert refused.value.code == code
    assert counts() == before


@pytest.mark.django_db
def test_a_corrupt_proof_key_is_a_refusal(demo):
    demo.ed25519_private_key = "zNotAKey"
    demo.save(update_fields=["ed25519_private_key"])
    before = counts()
    with pytest.raises(FederationError) as refused:
        outbox.post(demo, {"type": "Note", "content": "hi"})
    assert refused.value.code == "no_proof_key"
    assert counts() == before


@pytest.mark.django_db
def test_unknown_and_remote_actors_cannot_post(demo):
    remote = remote_actor("https://r.example/eve", inbox="https://r.example/eve/inbox")
    before = counts()
    for actor, code in (("nobody", "unknown_actor"), (remote, "not_local")):
        with pytest.raises(FederationError) as refused:
            outbox.post(actor, note())
        assert refused.value.code == code
    with pytest.raises(FederationError):
        outbox.post(demo, ["not", "an", "object"])
    assert counts() == before
