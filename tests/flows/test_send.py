"""ctx.send: flows post through the outbox, once, in the flow's transaction."""

from __future__ import annotations

import pytest

from fedsx.models import Activity, Delivery, Follow
from flows import flow, store
from flows.engine import Done, Entry, drive
from tests.outbox.conftest import remote_actor

FOLLOWER = "https://remote.example/users/amy"


def test_send_is_a_step_a_replay_returns_the_logged_id_and_posts_nothing():
    posted = []

    def post(fn, actor, activity):
        posted.append((actor, activity))
        return f"https://node.example/actors/{actor}/activities/{len(posted)}"

    def greeter(ctx, input):
        return ctx.send({"type": "Like", "object": input}, actor="demo")

    first = drive(greeter, "https://x.example/n/1", [], run_effect=post)
    assert first == Done(
        "https://node.example/actors/demo/activities/1",
        (Entry("step", "send Like", "https://node.example/actors/demo/activities/1"),),
    )
    replay = drive(greeter, "https://x.example/n/1", first.entries, run_effect=post)
    assert replay.value == first.value and replay.entries == ()
    assert len(posted) == 1


@pytest.fixture
def follow_request(demo):
    amy = remote_actor(FOLLOWER, inbox=f"{FOLLOWER}/inbox")
    follow = {
        "id": f"{FOLLOWER}#follow/1",
        "type": "Follow",
        "actor": FOLLOWER,
        "object": demo.ap_id,
    }
    Follow.objects.create(follower=amy, following=demo, follow_activity_id=follow["id"])
    return {"activity": follow, "actor": FOLLOWER, "recipient": demo.ap_id}


@pytest.mark.django_db
@pytest.mark.parametrize(("approved", "answer"), [(True, "Accept"), (False, "Reject")])
def test_approval_answers_the_follow(follow_request, approved, answer):
    pk, outcome = store.start("approval", follow_request)
    assert outcome.status == "suspended"
    assert not Activity.objects.filter(type=answer).exists()
    outcome = store.resume(pk, approved)
    assert outcome.status == "done", outcome
    sent = Activity.objects.get(ap_id=outcome.value["sent"])
    assert sent.type == answer
    assert sent.payload["object"] == follow_request["activity"]
    assert Delivery.objects.get(activity=sent).inbox_url == f"{FOLLOWER}/inbox"
    follows = Follow.objects.filter(follower__ap_id=FOLLOWER)
    if approved:
        assert follows.get().state == Follow.State.ACCEPTED
    else:
        assert not follows.exists()


@pytest.mark.django_db
def test_auto_accept_accepts_at_once(follow_request):
    _, outcome = store.start("auto_accept", follow_request)
    assert outcome.status == "done" and outcome.value["accepted"] is True
    assert Activity.objects.get(ap_id=outcome.value["sent"]).type == "Accept"
    assert Follow.objects.get(follower__ap_id=FOLLOWER).state == Follow.State.ACCEPTED


@pytest.mark.django_db
def test_a_send_the_outbox_refuses_crashes_the_flow_and_stores_nothing(demo):
    @flow("test-bad-send")
    def bad_send(ctx, input):
        return ctx.send({"type": "Note", "id": "https://x.example/mine"}, actor="demo")

    before = Activity.objects.count()
    _, outcome = store.start("test-bad-send", {})
    assert outcome.status == "crashed"
    assert "id_given" in outcome.detail or "leave 'id' out" in outcome.detail
    assert Activity.objects.count() == before
