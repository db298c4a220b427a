"""Every real activity in the fixtures (what Mastodon, Pleroma, Misskey, GoToSocial, Lemmy,
PeerTube, … actually send), signed Mastodon-style by a key standing in for its sender, is
accepted and appended once."""

import json
from pathlib import Path

import pytest

from fedsx.keys import key_in_document
from fedsx.models import Activity, Actor, InboxEntry
from fedsx.vocab import id_of

from .helpers import ACTIVITIES, deliver, remote_sender

EXCLUDED = {"security-negative", "signed-requests", "fediverse-pasture-inputs"}


def fixture_files(predicate) -> list[Path]:
    files = []
    for path in sorted(ACTIVITIES.rglob("*.json")):
        if EXCLUDED & set(path.relative_to(ACTIVITIES).parts):
            continue
        document = json.loads(path.read_text())
        if isinstance(document, dict) and predicate(document):
            files.append(path)
    return files


def is_activity(document: dict) -> bool:
    return bool(id_of(document.get("actor"))) and isinstance(document.get("type"), str)


def is_actor_with_key(document: dict) -> bool:
    return "actor" not in document and "publicKey" in document and "inbox" in document


ACTIVITY_FILES = fixture_files(is_activity)
ACTOR_FILES = fixture_files(is_actor_with_key)


def test_the_fixture_set_is_the_real_one():
    assert len(ACTIVITY_FILES) >= 80
    assert len(ACTOR_FILES) >= 20


@pytest.mark.django_db
@pytest.mark.parametrize("path", ACTIVITY_FILES, ids=lambda p: str(p.relative_to(ACTIVITIES)))
def test_real_activity_is_accepted_and_appended_once(client, demo, path):
    body = path.read_bytes()  # the bytes as the peer wrote them, not a re-serialisation
    activity = json.loads(body)
    for _ in range(2):
        # re-seeded each time: an actor's Delete of itself drops its key
        sender = remote_sender(id_of(activity["actor"]))
        response = deliver(client, "/actors/demo/inbox", body, sender)
        assert response.status_code == 202, response.content
    stored = Activity.objects.get()
    assert stored.payload == activity
    assert stored.type == activity["type"]
    assert InboxEntry.objects.filter(actor=demo, activity=stored).count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("path", ACTIVITY_FILES[::7], ids=lambda p: p.name)
def test_real_activity_fans_out_through_the_shared_inbox(client, demo, alice, path):
    activity = json.loads(path.read_text())
    activity["cc"] = [
        *(activity.get("cc") if isinstance(activity.get("cc"), list) else []),
        alice.ap_id,
    ]
    for _ in range(2):
        sender = remote_sender(id_of(activity["actor"]))
        assert deliver(client, "/inbox", activity, sender).status_code == 202
    assert list(InboxEntry.objects.values_list("actor__username", flat=True)) == ["alice"]


@pytest.mark.parametrize("path", ACTOR_FILES, ids=lambda p: str(p.relative_to(ACTIVITIES)))
def test_real_actor_documents_yield_their_key_and_owner(path):
    document = json.loads(path.read_text())
    keys = (
        document["publicKey"]
        if isinstance(document["publicKey"], list)
        else [document["publicKey"]]
    )
    key_id = keys[0]["id"]
    owner, pem, actor_document = key_in_document(document, key_id)
    assert owner == document["id"]
    assert "PUBLIC KEY" in pem
    assert actor_document is document


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["mastodon/delete-user.json", "lemmy/delete-user.json"])
def test_an_actor_deleting_itself_drops_its_key(client, demo, name):
    activity = json.loads((ACTIVITIES / name).read_text())
    sender = remote_sender(id_of(activity["actor"]))
    assert deliver(client, "/actors/demo/inbox", activity, sender).status_code == 202
    actor = Actor.objects.get(ap_id=sender.ap_id)
    assert (actor.key_id, actor.public_key_pem) == (None, "")
