import pytest
from django.db import transaction
from django.test import override_settings

from fedsx.models import Activity, InboxEntry
from flows import store
from flows.models import FlowInstance
from triggers.models import Firing, Trigger
from triggers.pipeline import apply_entries, apply_triggers, triggers_fired
from triggers.registry import TriggerIndex, trigger_index

from .conftest import SENDER, add_trigger, append, follow


@pytest.fixture
def entry(demo):
    return append(demo, follow())


@pytest.mark.django_db
def test_a_follow_starts_the_approval_flow_suspended(entry):
    trigger = add_trigger(label="approve follows")
    (firing,) = apply_triggers(entry)
    assert firing.outcome == Firing.Outcome.SUSPENDED
    assert firing.trigger == trigger and firing.inbox_entry == entry
    assert (firing.actor, firing.activity_cid) == (entry.actor, entry.activity.activity_cid)
    instance = FlowInstance.objects.get(pk=firing.flow_instance_id)
    assert (instance.flow_name, instance.status, instance.waiting_tag) == (
        "approval",
        "suspended",
        "approval",
    )
    assert instance.input == {
        "activity": entry.activity.payload,
        "actor": SENDER,
        "recipient": entry.actor.ap_id,
        "trigger": {"id": trigger.pk, "cid": trigger.trigger_cid, "label": "approve follows"},
    }
    entry.refresh_from_db()
    assert entry.triggers_applied_at is not None
    assert triggers_fired(entry.actor, entry.activity.activity_cid) == {trigger.trigger_cid}
    result = store.resume(instance.pk, True).value
    assert result["approved"] is True
    assert result["sent"].startswith(f"{entry.actor.ap_id}/activities/")  # the Accept


@pytest.mark.django_db
def test_applying_twice_fires_once(entry):
    add_trigger()
    assert len(apply_triggers(entry)) == 1
    assert apply_triggers(entry) == []
    assert Firing.objects.count() == 1 and FlowInstance.objects.count() == 1


@pytest.mark.django_db
def test_the_same_activity_in_two_inboxes_fires_for_each(demo, bob):
    add_trigger()
    payload = follow()
    apply_triggers(append(demo, payload))
    apply_triggers(append(bob, payload))
    assert sorted(Firing.objects.values_list("actor__username", flat=True)) == ["bob", "demo"]


@pytest.mark.django_db
def test_a_crashing_flow_does_not_stop_the_other_trigger(entry):
    add_trigger(flow_name="test.crash", label="crash")
    add_trigger(flow_name="test.done", label="done")
    add_trigger(flow_name="no.such.flow", label="unknown")
    firings = {f.trigger.label: f for f in apply_triggers(entry)}
    assert firings["crash"].outcome == Firing.Outcome.CRASHED
    assert "always crashes" in firings["crash"].detail
    assert firings["crash"].flow_instance.status == "crashed"
    assert firings["done"].outcome == Firing.Outcome.DONE
    assert firings["done"].flow_instance.result == {"sender": SENDER, "type": "Follow"}
    assert firings["unknown"].outcome == Firing.Outcome.ERROR
    assert firings["unknown"].flow_instance is None
    assert "no_such_flow" in firings["unknown"].detail
    assert Firing.objects.count() == 3


@pytest.mark.django_db
def test_type_actor_and_sender_scopes(demo, bob):
    add_trigger(label="bob only", actor_scope=["bob"])
    add_trigger(label="any type", activity_type="*", flow_name="test.done")
    add_trigger(label="other domain", sender_scope=["elsewhere.example"])
    add_trigger(label="sender domain", sender_scope=["remote.example"], flow_name="test.done")
    add_trigger(label="parent domain", sender_scope=["example"], flow_name="test.crash")
    add_trigger(label="sender id", sender_scope=[SENDER], guard="type == 'Follow'")
    add_trigger(label="likes", activity_type="Like")
    fired = {f.trigger.label for f in apply_triggers(append(demo, follow()))}
    assert fired == {"any type", "sender domain", "parent domain", "sender id"}
    fired = {f.trigger.label for f in apply_triggers(append(bob, follow()))}
    assert fired == {"bob only", "any type", "sender domain", "parent domain", "sender id"}


@pytest.mark.django_db
def test_guards_see_the_activity_the_sender_and_the_recipient(demo):
    add_trigger(label="to demo", guard="recipient == 'http://testserver/actors/demo'")
    add_trigger(label="from alice", guard=f"actor == '{SENDER}'", flow_name="test.done")
    add_trigger(label="summary", guard="contains(summary, 'hi')", flow_name="test.crash")
    add_trigger(label="no", guard="object == 'nobody'", flow_name="x")
    entry = append(demo, follow(summary="hi there", actor={"id": SENDER, "type": "Person"}))
    assert {f.trigger.label for f in apply_triggers(entry)} == {"to demo", "from alice", "summary"}


@pytest.mark.django_db
def test_a_guard_error_counts_as_failed_and_is_recorded(entry):
    add_trigger(guard="contains(object, `1`)")
    (firing,) = apply_triggers(entry)
    assert firing.outcome == Firing.Outcome.ERROR
    assert firing.detail.startswith("guard: ")
    assert firing.flow_instance is None and not FlowInstance.objects.exists()


@pytest.mark.django_db
def test_disabled_triggers_do_not_fire_and_changes_reach_the_index(entry):
    trigger = add_trigger()
    trigger.enabled = False
    trigger.save()
    assert apply_triggers(entry) == []
    trigger.enabled = True
    trigger.save()
    assert len(apply_triggers(entry)) == 1
    trigger.delete()
    assert trigger_index().size == 0


@pytest.mark.django_db
def test_candidates_come_from_the_index_not_a_scan(demo):
    for n in range(50):
        add_trigger(activity_type=f"Type{n}", flow_name="test.done")
    add_trigger(activity_type="Follow", actor_scope=["demo"], flow_name="test.done")
    index = TriggerIndex.load()
    assert index.size == 51
    buckets = index.buckets("Follow", "demo")
    assert [len(b.triggers) for b in buckets] == [1]
    assert index.buckets("Like", "demo") == []


@pytest.mark.django_db
def test_equality_guards_are_looked_up_not_evaluated(demo):
    for n in range(100):
        add_trigger(guard=f"object == 'http://testserver/actors/u{n}'", flow_name="test.done")
    add_trigger(guard="object == 'http://testserver/actors/demo'", label="hit")
    (bucket,) = TriggerIndex.load().buckets("Follow", "demo")
    assert len(bucket.evaluated) == 0
    document = {"object": "http://testserver/actors/demo"}
    assert [(t.label, settled) for t, settled in bucket.looked_up(document)] == [("hit", True)]
    (firing,) = apply_triggers(append(demo, follow()))
    assert firing.trigger.label == "hit"


@pytest.mark.django_db
def test_keyword_guards_are_filed_by_path_and_errors_still_recorded(demo):
    for word in ("spam", "scam", "hello"):
        add_trigger(label=word, guard=f"contains(summary, '{word}')", flow_name="test.done")
    add_trigger(label="and", guard="contains(summary, 'hello') && summary != 'x'", flow_name="x")
    (bucket,) = TriggerIndex.load().buckets("Follow", "demo")
    assert len(bucket.evaluated) == 0
    fired = apply_triggers(append(demo, follow(summary="hello spam")))
    assert {f.trigger.label for f in fired} == {"spam", "hello", "and"}
    # contains() of a missing field is an error in JMESPath: recorded, not silently skipped
    fired = apply_triggers(append(demo, follow()))
    assert {f.outcome for f in fired} == {Firing.Outcome.ERROR} and len(fired) == 4


@pytest.mark.django_db
def test_editing_the_spec_makes_a_new_trigger_that_fires_again(entry):
    trigger = add_trigger(label="a")
    apply_triggers(entry)
    old_cid = trigger.trigger_cid
    trigger.label = "renamed"
    trigger.save()
    assert trigger.trigger_cid == old_cid
    assert apply_triggers(entry) == []
    trigger.guard = "type == 'Follow'"
    trigger.save()
    assert trigger.trigger_cid != old_cid
    assert len(apply_triggers(entry)) == 1


@pytest.mark.django_db(transaction=True)
def test_post_commit_wiring_applies_after_commit_and_never_on_rollback(demo):
    add_trigger()
    with transaction.atomic():
        entry = append(demo, follow())
        assert not Firing.objects.exists()  # nothing runs inside the append's transaction
    assert Firing.objects.filter(inbox_entry=entry).count() == 1
    with pytest.raises(RuntimeError), transaction.atomic():
        append(demo, follow())
        raise RuntimeError("the append failed")
    assert Firing.objects.count() == 1
    assert InboxEntry.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_one_transaction_one_dispatch_for_all_its_entries(demo, bob, monkeypatch):
    from fedsx import jobs

    batches = []
    real = jobs.dispatch

    def recording(kind, ids):
        batches.append(list(ids))
        real(kind, ids)

    monkeypatch.setattr(jobs, "dispatch", recording)
    add_trigger()
    payload = follow()
    with transaction.atomic():
        first, second = append(demo, payload), append(bob, payload)
        with pytest.raises(RuntimeError), transaction.atomic():
            append(demo, follow())
            raise RuntimeError("a savepoint rolled back")
    with transaction.atomic():
        third = append(demo, follow())
    assert batches[0][:2] == [first.pk, second.pk]
    assert batches[1] == [third.pk]
    assert Firing.objects.count() == 3


@pytest.mark.django_db(transaction=True)
def test_dispatch_switched_off_leaves_entries_to_the_sweeper(demo):
    add_trigger()
    with override_settings(FEDSX={"BASE_URL": "http://testserver", "DISPATCH_TRIGGERS": False}):
        entry = append(demo, follow())
    assert not Firing.objects.exists()
    entry.refresh_from_db()
    assert entry.triggers_applied_at is None


@pytest.mark.django_db(transaction=True)
def test_concurrent_runs_fire_once(demo):
    """Two threads apply the same entry at once: the unique key lets one flow start."""
    import threading

    from django.db import connection, connections

    if connection.vendor != "postgresql":
        pytest.skip("SQLite serialises writers; the race needs Postgres (CI runs it)")
    add_trigger(flow_name="test.done")
    with override_settings(FEDSX={"BASE_URL": "http://testserver", "DISPATCH_TRIGGERS": False}):
        entry = append(demo, follow())
    barrier = threading.Barrier(4)
    results = []

    def run():
        try:
            mine = InboxEntry.objects.select_related("actor", "activity").get(pk=entry.pk)
            barrier.wait()
            results.append(len(apply_triggers(mine)))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(results) == [0, 0, 0, 1]
    assert Firing.objects.count() == 1 and FlowInstance.objects.count() == 1


@pytest.mark.django_db
def test_registered_test_flows_exist():
    assert Trigger.objects.count() == 0  # and the flows this file relies on are registered:
    from flows.registry import registered_flows

    assert {"approval", "test.done", "test.crash"} <= set(registered_flows())


@pytest.mark.django_db
def test_a_guard_overflow_is_an_error_firing_not_a_failed_batch(demo, settings):
    settings.FEDSX = {"BASE_URL": "http://testserver", "DISPATCH_TRIGGERS": False}
    bad = add_trigger(guard="floor(to_number(object.content)) > `1`", flow_name="test.done")
    good = add_trigger()
    entry = append(demo, follow(object={"content": "inf"}))
    assert apply_entries([entry.pk]) == 1
    firings = {f.trigger_id: f for f in Firing.objects.all()}
    assert firings[bad.pk].outcome == Firing.Outcome.ERROR
    assert "OverflowError" in firings[bad.pk].detail
    assert firings[good.pk].outcome == Firing.Outcome.SUSPENDED
    entry.refresh_from_db()
    assert entry.triggers_applied_at is not None


@pytest.mark.django_db
def test_one_entry_that_raises_does_not_hold_back_its_batch(demo, settings, caplog):
    settings.FEDSX = {"BASE_URL": "http://testserver", "DISPATCH_TRIGGERS": False}
    add_trigger()
    before = append(demo, follow())
    broken = append(demo, follow())
    after = append(demo, follow())
    # An activity whose JSON is not an object: building its guard document raises TypeError.
    Activity.objects.filter(pk=broken.activity_id).update(payload=["not", "an", "object"])
    assert apply_entries([before.pk, broken.pk, after.pk]) == 2
    applied = InboxEntry.objects.filter(triggers_applied_at__isnull=False)
    assert set(applied.values_list("pk", flat=True)) == {before.pk, after.pk}
    assert set(Firing.objects.values_list("inbox_entry_id", flat=True)) == {before.pk, after.pk}
    assert f"inbox entry {broken.pk} failed" in caplog.text


@pytest.mark.django_db
def test_embedded_mode_sweeps_in_process_at_most_once_per_interval(demo, settings):
    from datetime import timedelta

    from django.utils import timezone

    from fedsx import jobs

    settings.FEDSX = {"BASE_URL": "http://testserver", "SWEEP_AFTER_SECONDS": 60}
    add_trigger()

    def left_behind() -> InboxEntry:
        """An entry whose in-process run failed two minutes ago."""
        entry = append(demo, follow())
        old = timezone.now() - timedelta(minutes=2)
        InboxEntry.objects.filter(pk=entry.pk).update(created_at=old, triggers_applied_at=None)
        return entry

    def applied(entry: InboxEntry) -> bool:
        entry.refresh_from_db()
        return entry.triggers_applied_at is not None

    ticker = jobs.Ticker(start=False)  # celery beat's stand-in, ticked by hand
    missed = left_behind()
    ticker.tick()
    assert applied(missed)
    missed = left_behind()
    ticker.tick()
    assert not applied(missed)  # swept less than SWEEP_AFTER_SECONDS ago
    ticker.swept_at["triggers"] -= 61
    ticker.tick()
    assert applied(missed)


@pytest.mark.django_db(transaction=True)
def test_a_host_without_a_broker_applies_in_process(demo, monkeypatch):
    # A host project with no Celery configuration at all: not eager, no broker URL. Celery
    # would publish to amqp://localhost, where no worker listens; fedsx applies in process.
    from fedsx import jobs
    from triggers.tasks import apply_triggers

    conf = apply_triggers.app.conf
    monkeypatch.setitem(conf, "task_always_eager", False)
    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)
    monkeypatch.setitem(conf, "broker_url", None)
    assert jobs.runs_in_process()
    add_trigger()
    entry = append(demo, follow())
    assert Firing.objects.filter(inbox_entry=entry).count() == 1
    # with a broker it hands entries to the courier instead, however the URL is given
    monkeypatch.setitem(conf, "broker_write_url", "redis://127.0.0.1:6379/15")
    assert not jobs.runs_in_process()
    monkeypatch.setitem(conf, "broker_write_url", None)
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://127.0.0.1:6379/15")
    assert not jobs.runs_in_process()


@pytest.mark.django_db
def test_a_trigger_disabled_after_the_index_was_built_does_not_fire(demo):
    trigger = add_trigger()
    stale = trigger_index()
    Trigger.objects.filter(pk=trigger.pk).update(enabled=False)
    entry = append(demo, follow())
    assert apply_triggers(entry, stale) == []
    assert not Firing.objects.exists()
    assert not FlowInstance.objects.exists()


@pytest.mark.django_db
def test_a_trigger_edited_after_the_index_was_built_does_not_fire_under_its_old_spec(demo):
    trigger = add_trigger()
    stale = trigger_index()
    trigger.guard = "type == 'Follow'"
    trigger.save()  # a new spec, a new trigger_cid
    entry = append(demo, follow())
    assert apply_triggers(entry, stale) == []
    fresh = apply_triggers(entry, trigger_index())
    assert [firing.trigger_cid for firing in fresh] == [trigger.trigger_cid]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "flow_name",
    ["test.cancelled", "test.nul_error", "test.dangling_row"],
)
def test_a_flow_failing_oddly_is_its_own_crash_and_the_batch_goes_on(demo, flow_name):
    # Each of these once escaped the flow: a BaseException, an error the database could not
    # store, a row failing its foreign key at commit. The batch rolled back, every retry.
    add_trigger(flow_name=flow_name, label="odd")
    add_trigger(flow_name="test.done", label="done")
    with transaction.atomic():
        entries = [append(demo, follow()), append(demo, follow())]
    # (the post-commit wiring has already applied them in process: apply again to be sure)
    apply_entries([entry.pk for entry in entries], again=True)
    outcomes = sorted(Firing.objects.values_list("trigger__label", "outcome"))
    assert outcomes == [("done", "done")] * 2 + [("odd", "crashed")] * 2
    assert not InboxEntry.objects.filter(triggers_applied_at__isnull=True).exists()
    crashed = FlowInstance.objects.filter(flow_name=flow_name)
    assert [instance.status for instance in crashed] == ["crashed", "crashed"]


@pytest.mark.django_db(transaction=True)
def test_a_batch_the_database_keeps_refusing_is_applied_entry_by_entry(demo, settings, monkeypatch):
    # One entry the database refuses each time must not hold back the rest of its batch:
    # after a few retries of the whole batch the task applies its entries one by one.
    from django.db import DataError

    from triggers import pipeline, tasks

    settings.FEDSX = {**settings.FEDSX, "DISPATCH_TRIGGERS": False}  # the task applies them
    add_trigger(flow_name="test.done")
    with transaction.atomic():
        good, poison, also_good = (append(demo, follow()) for _ in range(3))
    real, attempts = pipeline.apply_triggers, []

    def refusing(entry, index=None, *, mark=True):
        if entry.pk == poison.pk:
            attempts.append(entry.pk)
            raise DataError("the database refuses this entry")
        return real(entry, index, mark=mark)

    monkeypatch.setattr(pipeline, "apply_triggers", refusing)
    tasks.apply_triggers.apply(args=[good.pk, poison.pk, also_good.pk])
    assert len(attempts) == tasks.ISOLATE_AFTER_RETRIES + 1
    applied = InboxEntry.objects.filter(triggers_applied_at__isnull=False)
    assert sorted(applied.values_list("pk", flat=True)) == [good.pk, also_good.pk]
    assert Firing.objects.filter(inbox_entry__in=[good, also_good]).count() == 2


@pytest.mark.django_db(transaction=True)
def test_embedded_mode_retries_a_failed_entry_without_waiting_for_another(
    demo, settings, monkeypatch
):
    import time

    from fedsx import jobs
    from triggers import pipeline

    # The embedded node as served: its ticker thread sweeps in celery beat's place.
    settings.FEDSX = {**settings.FEDSX, "SWEEP_AFTER_SECONDS": 0.2, "JOBS_IN_PROCESS_THREADS": True}
    monkeypatch.setattr(jobs, "_serving", True)
    add_trigger(flow_name="test.done")
    real, calls = pipeline.apply_entries, []

    def failing_once(entry_ids, **kwargs):
        calls.append(list(entry_ids))
        if len(calls) == 1:
            raise RuntimeError("the database is locked")
        return real(entry_ids, **kwargs)

    monkeypatch.setattr(pipeline, "apply_entries", failing_once)
    with transaction.atomic():
        entry = append(demo, follow())  # applied in process after the commit: it fails
    assert len(calls) == 1
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        entry.refresh_from_db()
        if entry.triggers_applied_at is not None:
            break
        time.sleep(0.1)
    assert entry.triggers_applied_at is not None
    assert Firing.objects.filter(inbox_entry=entry).count() == 1
