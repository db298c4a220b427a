"""The shared inbox reaches the local actors an activity concerns, not only those it
addresses (fedsx.kernel.concerned_local_ids has the rule): real servers' payloads, posted as
they send them, signed through the real view.

Each fixture is one of the copies in tests/fixtures/activities (provenance in its
SOURCES.txt), adapted here, never on disk: the ids of the fixture's local side (the actor
followed, liked, replied to, mentioned) become alice's on this node, and alice is taken out
of the addressing, so that what routes the activity is what it is about. On Postgres the
append statement decides, and the ORM form must name the same actors.
"""

from __future__ import annotations

import json

import pytest
from django.db import connection

from fedsx import kernel
from fedsx.actors import create_local_actor
from fedsx.kernel import shared_inbox_recipients
from fedsx.models import Actor, Follow, InboxEntry
from fedsx.vocab import ADDRESS_FIELDS, addressed_ids, id_of

from .helpers import ACTIVITIES, deliver, remote_sender

ALICE = "http://testserver/actors/alice"
ALICE_NOTE = f"{ALICE}/objects/0b5c1d2e-4f60-4a7b-8c9d-0e1f2a3b4c5d"  # as fedsx.outbox mints
ALICE_FOLLOW = f"{ALICE}/activities/7a1e9d3c-2b4f-4e6a-9c8d-1f2e3d4c5b6a"

# The fixtures' local side: the actors and objects that become alice's.
LAIN = "http://localtesting.pleroma.lol/users/lain"
LAIN_NOTE = "http://localtesting.pleroma.lol/objects/eb92579d-3417-42a8-8652-2492c2d4f454"
LAIN_FOLLOW = f"{LAIN}#follows/4"
MITRA_FOLLOW = "https://voyager.lemmy.ml/activities/follow/7d782f02-b91d-4455-b6c0-772540f00c2d"
MISSKEY_NOTE = "https://testing.pleroma.lol/objects/c331bbf7-2eb9-4801-a709-2a6103492a5a"
ADMIN_STATUS = "http://mastodon.example.org/@admin/99541947525187367"
POLL = "https://testing.uguu.ltd/objects/9d300947-2dcb-445d-8978-9a3b4b84fa14"

# case: (fixture, what of its local side becomes alice's, in order: longer ids first)
CASES = {
    # object is the local actor
    "follow-mastodon": ("mastodon/follow.json", {LAIN: ALICE}),
    "follow-hubzilla": ("other/hubzilla-follow.json", {LAIN.replace("http:", "https:"): ALICE}),
    "block-mastodon": ("mastodon/block.json", {LAIN: ALICE}),
    "flag-gotosocial": (
        "gotosocial/flag.json",
        {"http://fossbros-anonymous.io/users/foss_satan": ALICE},
    ),
    # object is an activity or object of the local actor, referenced or embedded
    "undo-follow-mastodon": ("mastodon/undo-follow.json", {LAIN: ALICE}),
    "accept-follow-mastodon": (
        "mastodon/accept-follow.json",
        {LAIN_FOLLOW: ALICE_FOLLOW, LAIN: ALICE},
    ),
    "accept-follow-mitra": (
        "other/mitra-accept.json",
        {MITRA_FOLLOW: ALICE_FOLLOW, "https://voyager.lemmy.ml/u/silverpill": ALICE},
    ),
    "reject-follow-mastodon": (
        "mastodon/reject-follow.json",
        {LAIN_FOLLOW: ALICE_FOLLOW, LAIN: ALICE},
    ),
    "like-mastodon": ("mastodon/like.json", {LAIN_NOTE: ALICE_NOTE}),
    "like-misskey": (
        "misskey/like-with-reaction.json",
        {MISSKEY_NOTE: ALICE_NOTE, "https://testing.pleroma.lol/users/lain": ALICE},
    ),
    "emoji-react-pleroma": ("pleroma-akkoma/emoji-react.json", {LAIN_NOTE: ALICE_NOTE}),
    "announce-mastodon": ("mastodon/announce.json", {ADMIN_STATUS: ALICE_NOTE}),
    "undo-announce-mastodon": ("mastodon/undo-announce.json", {ADMIN_STATUS: ALICE_NOTE}),
    "undo-like-lemmy": ("lemmy/undo-like-note.json", {"http://ds9.lemmy.ml/comment/1": ALICE_NOTE}),
    # inReplyTo one of the local actor's objects
    "reply-pleroma": (
        "pleroma-akkoma/create-reply-to-misskey-thread.json",
        {"https://mk.absturztau.be/notes/93e7nm8wqg": ALICE_NOTE},
    ),
    "reply-lemmy": ("lemmy/create-comment.json", {"http://ds9.lemmy.ml/post/1": ALICE_NOTE}),
    "reply-mastodon-poll-vote": ("mastodon/create-vote.json", {POLL: ALICE_NOTE}),
    # mentions the local actor
    "mention-mastodon": ("mastodon/create-note.json", {LAIN: ALICE}),
}


def adapted(relative: str, replacements: dict[str, str]) -> dict:
    """The fixture with its local side made alice's, and alice out of its addressing."""
    text = (ACTIVITIES / relative).read_text()
    for old, new in replacements.items():
        assert old in text, f"{relative} has no {old}"
        text = text.replace(old, new)
    activity = json.loads(text)
    for field in ADDRESS_FIELDS:
        value = activity.get(field)
        if isinstance(value, list):
            activity[field] = [ref for ref in value if not id_of(ref).startswith(ALICE)]
        elif id_of(value).startswith(ALICE):
            del activity[field]
    assert not {ref for ref in addressed_ids(activity) if ref.startswith("http://testserver")}
    return activity


def post_shared(client, activity: dict) -> None:
    sender = remote_sender(id_of(activity["actor"]))
    response = deliver(client, "/inbox", activity, sender)
    assert response.status_code == 202, response.content


def logged(activity: dict) -> set[str]:
    """Whose inbox log the activity is in."""
    entries = InboxEntry.objects.filter(activity__ap_id=activity["id"])
    return set(entries.values_list("actor__username", flat=True))


def same_on_both_paths(activity: dict) -> set[str]:
    # On SQLite this is the path that ran; on Postgres the statement ran and this checks it.
    return {actor.username for actor in shared_inbox_recipients(activity)}


@pytest.fixture
def local_actors(db):
    """alice, whom the cases concern, and two bystanders who must get nothing."""
    return create_local_actor("alice"), create_local_actor("demo"), create_local_actor("carol")


@pytest.fixture
def statement_decides(monkeypatch):
    """On Postgres the one-statement append must find the recipients itself: the ORM
    fallback would hide a statement that finds none."""
    if connection.vendor == "postgresql":

        def no_fallback(*args, **kwargs):
            raise AssertionError("the append statement did not decide")

        monkeypatch.setattr(kernel, "_append_with_orm", no_fallback)


@pytest.mark.django_db
@pytest.mark.parametrize("case", CASES)
def test_an_activity_reaches_the_local_actor_it_concerns_and_no_one_else(
    client, local_actors, statement_decides, case
):
    activity = adapted(*CASES[case])
    post_shared(client, activity)
    assert logged(activity) == {"alice"}
    assert same_on_both_paths(activity) == {"alice"}
    post_shared(client, activity)  # a repeat delivery adds nothing
    assert InboxEntry.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("case", CASES)
def test_the_same_activity_concerning_no_local_actor_reaches_no_one(
    client, local_actors, statement_decides, case
):
    relative, _ = CASES[case]
    activity = json.loads((ACTIVITIES / relative).read_text())
    post_shared(client, activity)
    assert logged(activity) == set()
    assert same_on_both_paths(activity) == set()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "stranger",
    [
        "http://testserver/actors/nobody",  # under this node, but no such actor
        "http://testserver/actors/",  # no name at all
        "https://remote.example/actors/alice",  # alice's path on another host
        "http://testserver.evil.example/actors/alice",  # our host as a prefix of another
        "http://testserver/actorsalice",
    ],
)
def test_ids_that_only_look_local_reach_no_one(client, local_actors, statement_decides, stranger):
    activity = adapted(
        "mastodon/follow.json", {"http://localtesting.pleroma.lol/users/lain": stranger}
    )
    post_shared(client, activity)
    assert logged(activity) == set() == same_on_both_paths(activity)


@pytest.mark.django_db
def test_an_undo_by_id_reaches_where_the_undone_activity_went(
    client, local_actors, statement_decides
):
    # Mastodon's Undo of a Like may name the Like by id only: the Like is not ours, but it
    # reached alice, and so does its Undo.
    like = adapted(*CASES["like-mastodon"])
    undo = json.loads((ACTIVITIES / "mastodon/undo-like-compact-object.json").read_text())
    assert undo["object"] == like["id"]
    post_shared(client, like)
    post_shared(client, undo)
    assert logged(undo) == {"alice"} == same_on_both_paths(undo)
    # Another sender naming the same id undoes nothing of alice's: it reaches no one.
    forged = {**undo, "id": "https://evil.example/undo/1", "actor": "https://evil.example/m"}
    post_shared(client, forged)
    assert logged(forged) == set() == same_on_both_paths(forged)


@pytest.mark.django_db
def test_concern_and_followers_addressing_together_reach_each_actor_once(
    client, local_actors, statement_decides
):
    # A reply to alice's note, addressed to the sender's followers, of whom demo is one.
    _, demo, _ = local_actors
    activity = adapted(*CASES["reply-pleroma"])
    sender = remote_sender(id_of(activity["actor"]))
    author = Actor.objects.get(ap_id=sender.ap_id)
    Follow.objects.create(follower=demo, following=author, state="accepted")
    assert f"{sender.ap_id}/followers" in addressed_ids(activity)
    post_shared(client, activity)
    assert logged(activity) == {"alice", "demo"} == same_on_both_paths(activity)
    assert InboxEntry.objects.count() == 2


@pytest.mark.django_db
def test_a_follow_of_alice_on_the_shared_inbox_is_projected_and_logged(
    client, local_actors, statement_decides
):
    # The case: Mastodon's Follow (no `to`) stored, answered 202 and seen by no one.
    alice = local_actors[0]
    activity = adapted(*CASES["follow-mastodon"])
    post_shared(client, activity)
    entry = InboxEntry.objects.get()
    assert (entry.actor, entry.seq) == (alice, 1)
    follow = Follow.objects.get()
    assert (follow.follower.ap_id, follow.following, follow.state) == (
        id_of(activity["actor"]),
        alice,
        "pending",
    )
