"""Conversations: ctx.receive and ctx.sleep in the driver, the store, the pipeline's
matching of arrivals, the look-back and the timers; the shipped flows built on them."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from fedsx.actors import create_local_actor
from fedsx.kernel import append_inbox
from fedsx.models import Actor
from flows import flow, store, waits
from flows.engine import ACTIVITY, RECEIVE, SLEEP, TIMEOUT, TIMER, Crashed, Done, Suspended, drive
from flows.matching import BadMatch, Match
from flows.models import FlowInstance, Receipt
from triggers.pipeline import apply_entries

PEER = "https://peer.example/users/pat"
FOLLOW_ID = "http://testserver/actors/demo/activities/f-1"
CLOCK = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def accept(n: int = 1, object_: object = FOLLOW_ID, type_: str = "Accept") -> dict:
    return {"id": f"{PEER}#accepts/{n}", "type": type_, "actor": PEER, "object": object_}


# ── the driver ─────────────────────────────────────────────────────────────────────────


def receiving(ctx, input):
    answer = ctx.receive(
        {"type": ["Accept", "Reject"], "object": FOLLOW_ID}, timeout=input.get("timeout", 60)
    )
    return {"answer": answer and answer["type"]}


def test_receive_suspends_with_its_match_and_deadline():
    result = drive(receiving, {}, clock=lambda: CLOCK)
    assert isinstance(result, Suspended)
    assert (result.waiting, result.wake_at) == (ACTIVITY, CLOCK + timedelta(seconds=60))
    assert result.match == {"type": ["Accept", "Reject"], "object": FOLLOW_ID}
    assert result.tag.startswith("receive Accept|Reject ")


def test_receive_replays_the_activity_or_the_timeout():
    tag = drive(receiving, {}).tag
    answered = drive(receiving, {}, [(RECEIVE, tag, {"activity": accept()})])
    assert answered == Done({"answer": "Accept"})
    timed_out = drive(receiving, {}, [(TIMEOUT, tag, {"due": "x", "woke": "y"})])
    assert timed_out == Done({"answer": None})


def test_a_changed_match_is_caught_on_replay():
    tag = drive(receiving, {}).tag

    def changed(ctx, input):
        return ctx.receive({"type": "Accept", "object": FOLLOW_ID}, timeout=60)

    result = drive(changed, {}, [(RECEIVE, tag, {"activity": accept()})])
    assert type(result).__name__ == "Nondeterministic"


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"type": ["Accept", "Reject"]}, "a match needs object"),
        ({"object": 5}, "object is an id"),
        ({"color": "red", "type": "Note"}, "unknown match field 'color'"),
        ({"type": "Note", "guard": "type =="}, "guard"),
        ({"type": "Note", "since": -1}, "since"),
    ],
)
def test_a_malformed_match_crashes_the_flow_saying_why(spec, message):
    with pytest.raises(BadMatch, match=message):
        Match.parse(spec)
    result = drive(lambda ctx, input: ctx.receive(spec, timeout=5), {})
    assert isinstance(result, Crashed) and message in result.error


def test_receive_without_a_timeout_is_an_error_in_the_flow():
    result = drive(lambda ctx, input: ctx.receive({"object": FOLLOW_ID}), {})
    assert isinstance(result, Crashed) and "timeout" in result.error


def test_sleep_suspends_on_a_timer_and_replays():
    def sleeper(ctx, input):
        ctx.sleep(timedelta(minutes=5))
        return "woke"

    result = drive(sleeper, {}, clock=lambda: CLOCK)
    assert (result.waiting, result.wake_at) == (TIMER, CLOCK + timedelta(minutes=5))
    assert drive(sleeper, {}, [(SLEEP, "sleep", {"due": "a", "woke": "b"})]) == Done("woke")
    assert isinstance(drive(lambda ctx, i: ctx.sleep("soon"), {}), Crashed)


def test_an_operator_wait_can_time_out_to_its_default():
    def waiter(ctx, input):
        return ctx.wait("decision", timeout=10, default="expired")

    suspended = drive(waiter, {}, clock=lambda: CLOCK)
    assert suspended.wake_at == CLOCK + timedelta(seconds=10)
    assert drive(waiter, {}, [(TIMEOUT, "decision", {})]) == Done("expired")
    assert drive(waiter, {}, [("wait", "decision", "yes")]) == Done("yes")


def test_keys_cover_every_way_an_activity_can_answer():
    spec = Match.parse({"type": "Create", "inReplyTo": "https://q.example/1"})
    reply = {"type": "Create", "object": {"type": "Note", "inReplyTo": "https://q.example/1"}}
    assert spec.key in waits.keys_of(reply, PEER, "http://testserver/actors/demo")
    assert spec.matches(reply, PEER, "http://testserver/actors/demo")
    embedded = accept(object_={"id": FOLLOW_ID, "type": "Follow"})
    assert Match.parse({"object": FOLLOW_ID}).matches(embedded, PEER, "")


# ── the store and the pipeline ─────────────────────────────────────────────────────────


@pytest.fixture
def demo(db) -> Actor:
    return create_local_actor("demo")


@pytest.fixture
def receiver_flow():
    flow("test.receive")(receiving)
    return "test.receive"


def arrive(demo: Actor, activity: dict):
    """An activity reaching demo's inbox, and the pipeline applied to it, as after commit."""
    (entry,) = append_inbox(activity, [demo]).entries
    apply_entries([entry.pk])
    return entry


def started(name: str, input: dict | None = None) -> FlowInstance:
    pk, outcome = store.start(name, input or {})
    assert outcome.status == "suspended", outcome
    return FlowInstance.objects.get(pk=pk)


@pytest.mark.django_db
def test_an_arrival_resumes_the_instance_it_answers_once(demo, receiver_flow):
    instance = started(receiver_flow)
    assert (instance.waiting_kind, instance.match_key) == ("activity", f"object {FOLLOW_ID}")
    assert "waiting for an activity" in store.status(instance.pk).detail
    arrive(demo, accept(1, object_="https://elsewhere.example/other"))  # not ours
    instance.refresh_from_db()
    assert instance.status == "suspended"
    entry = arrive(demo, accept(2))
    instance.refresh_from_db()
    assert (instance.status, instance.result) == ("done", {"answer": "Accept"})
    # A retried pipeline task, or the same entry handed over again, resumes nothing.
    apply_entries([entry.pk], again=True)
    outcome = waits._deliver(instance.pk, entry)
    assert outcome == 0 and Receipt.objects.filter(instance=instance).count() == 1


@pytest.mark.django_db
def test_an_operator_resume_of_a_receive_is_refused(demo, receiver_flow):
    instance = started(receiver_flow)
    outcome = store.resume(instance.pk, True)
    assert outcome.error == "not_waiting_for_operator"
    instance.refresh_from_db()
    assert instance.status == "suspended" and instance.log_length == 0


@pytest.mark.django_db
def test_an_answer_already_in_the_log_is_found_by_the_look_back(
    demo, django_capture_on_commit_callbacks
):
    @flow("test.late-receive")
    def late(ctx, input):
        ctx.wait("go")
        return receiving(ctx, {})

    instance = started("test.late-receive")
    arrive(demo, accept(3))  # the fast peer: answered before the receive was registered
    with django_capture_on_commit_callbacks(execute=True):
        store.resume(instance.pk, "go")
    instance.refresh_from_db()
    assert (instance.status, instance.result) == ("done", {"answer": "Accept"})
    assert not instance.lookback_due


@pytest.mark.django_db
def test_timers_wake_once_when_due(demo):
    @flow("test.sleep")
    def sleeper(ctx, input):
        ctx.sleep(input["seconds"])
        return "woke"

    later = started("test.sleep", {"seconds": 3600})
    now = started("test.sleep", {"seconds": 0})
    assert set(waits.overdue()) == {now.pk}  # what is due, not what sleeps
    assert store.wake(later.pk).error == "not_due"
    assert waits.run(waits.overdue()) == 1
    assert waits.run([now.pk]) == 0  # a second tick (or worker) wakes nothing again
    assert store.status(now.pk).value == "woke"
    assert store.wake(now.pk).error == "already_done"
    flow("test.operator")(lambda ctx, input: ctx.wait("go"))
    assert store.wake(started("test.operator").pk, early=True).error == "not_sleeping"
    assert store.wake(later.pk, early=True).value == "woke"  # flows wake ID


@pytest.mark.django_db
def test_a_receive_that_times_out_returns_none(demo, receiver_flow):
    instance = started(receiver_flow, {"timeout": 0})
    assert waits.run(waits.overdue()) == 1
    assert store.status(instance.pk).value == {"answer": None}


@pytest.mark.django_db
def test_the_timer_flow_reports_when_it_was_due_and_woke(db):
    instance = started("timer", {"seconds": 0})
    assert instance.waiting_kind == "timer"
    waits.run(waits.overdue())
    result = store.status(instance.pk).value
    due, woke = (datetime.fromisoformat(result[k]) for k in ("due", "woke"))
    assert due <= woke <= timezone.now()


@pytest.mark.django_db
def test_the_approval_flow_expires_without_sending(demo, settings):
    settings.FEDSX = {**settings.FEDSX, "APPROVAL_TIMEOUT_SECONDS": 0}
    follow = {"id": f"{PEER}#follow", "type": "Follow", "actor": PEER, "object": demo.ap_id}
    instance = started("approval", {"activity": follow, "actor": PEER, "recipient": demo.ap_id})
    waits.run(waits.overdue())
    assert store.status(instance.pk).value == {"outcome": "expired", "approved": None}
    from fedsx.models import OutboxEntry

    assert not OutboxEntry.objects.exists()


@pytest.mark.django_db
def test_the_follow_flow_ends_accepted_rejected_or_timed_out(demo, settings):
    bob = create_local_actor("bob")  # a local target: no HTTP, the Follow lands in bob's inbox
    results = {}
    for name, answer in (("a", "Accept"), ("r", "Reject"), ("t", None)):
        instance = started("follow", {"actor": "demo", "target": bob.ap_id, "timeout": 3600})
        sent = instance.log.get(kind="step").value
        if answer:
            arrive(demo, {"id": f"{bob.ap_id}#{name}", "type": answer, "actor": bob.ap_id,
                          "object": {"id": sent, "type": "Follow"}})  # fmt: skip
        else:
            store.wake(instance.pk, early=True)
        results[name] = store.status(instance.pk).value["outcome"]
    assert results == {"a": "accepted", "r": "rejected", "t": "timed_out"}


@pytest.mark.django_db(transaction=True)
def test_an_answer_committed_while_the_receive_is_being_registered_is_not_lost(
    receiver_flow,
):
    """The race: the answer commits after the flow's transaction looked (it could not see
    it) and before that transaction committed (the answer's matching could not see the
    wait). The look-back after the commit finds it; exactly one resume."""
    if connection.vendor != "postgresql":
        pytest.skip("concurrent sessions need Postgres (CI runs it)")
    demo = create_local_actor("demo")
    registered, answered = threading.Event(), threading.Event()

    def peer_answers():
        registered.wait(10)
        try:
            arrive(demo, accept(9))  # commits now; the wait is not visible to it yet
        finally:
            connection.close()
            answered.set()

    peer = threading.Thread(target=peer_answers)
    peer.start()
    with transaction.atomic():
        pk, _ = store.start(receiver_flow, {})
        registered.set()
        assert answered.wait(10)
        assert FlowInstance.objects.get(pk=pk).status == "suspended"
    peer.join(10)
    instance = FlowInstance.objects.get(pk=pk)
    assert (instance.status, instance.result) == ("done", {"answer": "Accept"})
    assert Receipt.objects.filter(instance=instance).count() == 1


@pytest.mark.django_db
def test_the_question_flow_counts_one_vote_per_voter_and_posts_the_tally(
    demo, django_capture_on_commit_callbacks
):
    from fedsx.models import Activity

    instance = started("question", {"actor": "demo", "options": ["tea", "coffee"]})
    question = instance.log.get(tag="question id").value
    assert Activity.objects.get(object_id=question).payload["object"]["type"] == "Question"

    def vote(voter: str, name: str, n: int) -> None:
        note = {"type": "Note", "name": name, "inReplyTo": question, "attributedTo": voter}
        with django_capture_on_commit_callbacks(execute=True):  # the look-back after each
            arrive(demo, {"id": f"{voter}#v{n}", "type": "Create", "actor": voter, "object": note})

    vote("https://a.example/u/1", "tea", 1)
    vote("https://b.example/u/2", "coffee", 2)
    vote("https://a.example/u/1", "coffee", 3)  # a second vote by the same voter: ignored
    vote("https://c.example/u/3", "beer", 4)  # not an option: ignored
    with django_capture_on_commit_callbacks(execute=True):
        outcome = store.wake(instance.pk, early=True)  # the poll closes
    assert outcome.value["tally"] == {"tea": 1, "coffee": 1}
    update = Activity.objects.filter(type="Update", actor=demo.ap_id).get()
    counts = [o["replies"]["totalItems"] for o in update.payload["object"]["oneOf"]]
    assert update.payload["object"]["id"] == question and counts == [1, 1]


@pytest.mark.django_db(transaction=True)
def test_concurrent_arrivals_for_one_wait_resume_it_once(receiver_flow, settings):
    if connection.vendor != "postgresql":
        pytest.skip("concurrent sessions need Postgres (CI runs it)")
    settings.FEDSX = {**settings.FEDSX, "DISPATCH_TRIGGERS": False}  # the threads deliver
    demo = create_local_actor("demo")
    pk, _ = store.start(receiver_flow, {})
    entries = [append_inbox(accept(20 + n), [demo]).entries[0] for n in range(4)]
    FlowInstance.objects.filter(pk=pk).update(lookback_due=False)
    barrier, outcomes = threading.Barrier(len(entries)), []

    def arrive_at_once(entry):
        barrier.wait(10)
        try:
            outcomes.append(waits._deliver(pk, entry))
        finally:
            connection.close()

    threads = [threading.Thread(target=arrive_at_once, args=(e,)) for e in entries]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert sorted(outcomes) == [0, 0, 0, 1]
    assert Receipt.objects.filter(instance_id=pk).count() == 1
    assert FlowInstance.objects.get(pk=pk).status == "done"


@pytest.mark.django_db
def test_replay_catches_a_deploy_that_changes_what_a_flow_waits_for(demo, receiver_flow):
    instance = started(receiver_flow)
    sleeping = started("timer", {"seconds": 3600})
    assert {c.instance_id: c.ok for c in store.check_replay()}[instance.pk] is True

    @flow("test.receive")
    def changed(ctx, input):  # the deploy: now waits for Accept only
        return ctx.receive({"type": "Accept", "object": FOLLOW_ID}, timeout=60)

    verdicts = {c.instance_id: c for c in store.check_replay()}
    assert not verdicts[instance.pk].ok and "now waits on" in verdicts[instance.pk].detail
    assert verdicts[sleeping.pk].ok  # the timer flow did not change
