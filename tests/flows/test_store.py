"""The store against the database (Postgres in CI; the concurrency tests need it)."""

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.contrib.auth.models import Group
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from flows import flow, store
from flows.models import FlowInstance, FlowLogEntry
from flows.registry import unregister_flow

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db


def log_of(instance_id):
    return list(
        FlowLogEntry.objects.filter(instance_id=instance_id)
        .order_by("seq")
        .values_list("seq", "kind", "tag", "value")
    )


@pytest.fixture
def crashing():
    @flow("test-crashing")
    def crashing(ctx, input):
        ctx.step("fine", lambda: "ok")
        raise RuntimeError("the flow broke")

    return "test-crashing"


def test_the_approval_flow_is_registered_by_the_project():
    assert "approval" in store.registered_flows()
    assert store.resolve_flow("approval").__module__ == "flows.flows"
    assert store.resolve_flow("nope") is None


def test_start_suspend_resume_done():
    pk, outcome = store.start("approval", {"activity": {"type": "Follow"}, "actor": "a"})
    assert outcome == store.Outcome("suspended", tag="approval", detail="waiting on 'approval'")
    assert outcome.ok
    instance = FlowInstance.objects.get(pk=pk)
    assert (instance.status, instance.waiting_tag, instance.log_length) == (
        "suspended",
        "approval",
        0,
    )
    assert instance.input == {"activity": {"type": "Follow"}, "actor": "a"}
    assert instance.code_hash == store.registration("approval").code_hash

    outcome = store.resume(pk, {"by": "admin", "ok": True})
    assert outcome.status == "done" and outcome.ok
    assert outcome.value == {"approved": {"by": "admin", "ok": True}}
    assert log_of(pk) == [(0, "wait", "approval", {"by": "admin", "ok": True})]
    assert store.status(pk) == outcome
    instance.refresh_from_db()
    assert (instance.status, instance.result, instance.waiting_tag) == (
        "done",
        {"approved": {"by": "admin", "ok": True}},
        "",
    )


def test_each_resume_appends_and_never_rewrites():
    @flow("test-three-waits")
    def three(ctx, input):
        return [ctx.wait("a"), ctx.step("s", lambda: "x"), ctx.wait("b"), ctx.wait("c")]

    pk, _ = store.start("test-three-waits", {})
    assert store.resume(pk, 1).tag == "b"
    first_rows = list(FlowLogEntry.objects.filter(instance_id=pk).values("id", "seq", "time"))
    assert store.resume(pk, 2).tag == "c"
    assert store.resume(pk, 3).value == [1, "x", 2, 3]
    assert log_of(pk) == [
        (0, "wait", "a", 1),
        (1, "step", "s", "x"),
        (2, "wait", "b", 2),
        (3, "wait", "c", 3),
    ]
    again = FlowLogEntry.objects.filter(id__in=[r["id"] for r in first_rows]).values(
        "id", "seq", "time"
    )
    assert sorted(again, key=lambda r: r["seq"]) == first_rows
    assert FlowInstance.objects.get(pk=pk).log_length == 4


def test_a_resume_reads_the_log_once_and_writes_one_insert_and_one_update():
    @flow("test-long")
    def long(ctx, input):
        for i in range(50):
            ctx.step(f"s{i}", lambda i=i: i)
        ctx.wait("one")
        return ctx.wait("two")

    pk, _ = store.start("test-long", {})
    with CaptureQueriesContext(connection) as queries:
        assert store.resume(pk, 1).tag == "two"
    sql = [q["sql"] for q in queries.captured_queries]
    log_reads = [s for s in sql if s.startswith("SELECT") and "flows_flowlogentry" in s]
    inserts = [s for s in sql if s.startswith("INSERT")]
    updates = [s for s in sql if s.startswith("UPDATE")]
    assert len(log_reads) == 1 and "ORDER BY" in log_reads[0]
    assert len(inserts) == 1 and len(updates) == 1


def test_start_of_an_unknown_flow_creates_nothing():
    assert store.start("nope", {}) == (
        None,
        store.Outcome("error", error="no_such_flow", detail="no flow is registered as 'nope'"),
    )
    assert not FlowInstance.objects.exists()


@pytest.mark.parametrize(
    ("bad", "detail"),
    [
        ([1, 2], "the input must be a JSON object, not a list"),
        ({"when": time}, "the input['when'] is a module, not JSON"),
        ({"x": float("nan")}, "the input['x'] is nan, which JSON cannot hold"),
        ({"x": "a\x00b"}, "the input['x'] contains U+0000, which the database cannot store"),
        ({1: "x"}, "the input has a non-string key 1"),
        ({"x": (1, 2)}, "the input['x'] is a tuple, not JSON"),
    ],
)
def test_start_refuses_input_that_is_not_a_json_object(bad, detail):
    pk, outcome = store.start("approval", bad)
    assert pk is None
    assert (outcome.status, outcome.error, outcome.detail) == ("error", "not_json", detail)
    assert not FlowInstance.objects.exists()


def test_a_crashing_flow_leaves_a_crashed_instance(crashing):
    pk, outcome = store.start(crashing, {})
    assert pk is not None
    assert (outcome.status, outcome.error) == ("crashed", "flow_crashed")
    assert outcome.detail == "RuntimeError: the flow broke"
    assert not outcome.ok
    instance = FlowInstance.objects.get(pk=pk)
    assert instance.status == "crashed"
    assert instance.error.startswith("RuntimeError: the flow broke\n\nTraceback")
    assert log_of(pk) == [
        (0, "step", "fine", "ok"),
        (1, "error", "", {"error": "RuntimeError: the flow broke"}),
    ]
    assert store.status(pk) == outcome


@pytest.mark.parametrize("bad_id", [0, -1, "abc", 2**70, True, None, 1.5, 999_999])
def test_unknown_instances_are_errors_for_every_operation(bad_id):
    for outcome in (
        store.resume(bad_id, 1),
        store.status(bad_id),
        store.cancel(bad_id),
        store.retry(bad_id),
    ):
        assert (outcome.status, outcome.error) == ("error", "no_such_instance")


def test_resuming_done_cancelled_or_crashed_instances_is_refused(crashing):
    done, _ = store.start("approval", {})
    store.resume(done, True)
    assert store.resume(done, True).error == "already_done"
    cancelled, _ = store.start("approval", {})
    assert store.cancel(cancelled).status == "cancelled"
    assert store.resume(cancelled, True).error == "already_cancelled"
    assert store.cancel(cancelled).error == "already_cancelled"
    assert store.cancel(done).error == "already_done"
    crashed, _ = store.start(crashing, {})
    refused = store.resume(crashed, True)
    assert refused.error == "not_suspended" and "retry or cancel" in refused.detail
    assert FlowLogEntry.objects.filter(kind="wait").count() == 1  # only the one real resume


def test_a_non_json_value_is_refused_and_nothing_is_written():
    pk, _ = store.start("approval", {})
    outcome = store.resume(pk, {"when": object()})
    assert outcome.error == "not_json" and "is a object, not JSON" in outcome.detail
    assert log_of(pk) == []
    assert store.status(pk).status == "suspended"


def test_a_resume_of_an_unregistered_flow_is_refused():
    @flow("test-temporary")
    def temporary(ctx, input):
        return ctx.wait("x")

    pk, _ = store.start("test-temporary", {})
    unregister_flow("test-temporary")
    outcome = store.resume(pk, 1)
    assert outcome.error == "no_such_flow" and "not registered" in outcome.detail
    assert log_of(pk) == []


def test_retry_runs_the_failed_step_again_and_not_the_earlier_ones():
    calls = {"before": 0, "flaky": 0}

    def before():
        calls["before"] += 1
        return "before"

    def flaky():
        calls["flaky"] += 1
        if calls["flaky"] == 1:
            raise ConnectionError("peer down")
        return "sent"

    @flow("test-flaky")
    def flaky_flow(ctx, input):
        return [ctx.step("before", before), ctx.step("send", flaky)]

    pk, outcome = store.start("test-flaky", {})
    assert outcome.status == "crashed"
    assert outcome.detail == "ConnectionError: peer down (in step 'send')"
    assert store.retry(pk) == store.Outcome("done", value=["before", "sent"], detail="done")
    assert calls == {"before": 1, "flaky": 2}
    assert [row[1:3] for row in log_of(pk)] == [
        ("step", "before"),
        ("error", "send"),
        ("step", "send"),
    ]
    assert FlowInstance.objects.get(pk=pk).error == ""
    assert store.retry(pk).error == "already_done"
    waiting, _ = store.start("approval", {})
    assert store.retry(waiting).error == "not_retryable"


def test_code_that_changes_under_a_suspended_instance_makes_it_nondeterministic():
    @flow("test-evolving")
    def v1(ctx, input):
        ctx.step("fetch", lambda: 1)
        return ctx.wait("approval")

    pk, _ = store.start("test-evolving", {})
    checks = store.check_replay(flow="test-evolving")
    assert [(c.instance_id, c.ok) for c in checks] == [(pk, True)]

    @flow("test-evolving")
    def v2(ctx, input):
        ctx.step("lookup", lambda: 1)
        return ctx.wait("approval")

    (check,) = store.check_replay(flow="test-evolving")
    assert not check.ok
    assert check.detail == (
        "at log position 0 the log has step 'fetch' but the flow asked for step 'lookup'"
    )
    assert log_of(pk) == [(0, "step", "fetch", 1)]  # the check wrote nothing

    outcome = store.resume(pk, True)
    assert (outcome.status, outcome.error) == ("nondeterministic", "nondeterministic")
    assert outcome.detail == check.detail
    assert log_of(pk)[-1] == (1, "wait", "approval", True)  # the answer is kept for a retry

    store.register_flow("test-evolving", v1)  # the code is put back: a retry finishes it
    assert store.retry(pk).value is True


def test_check_replay_spots_a_new_step_before_the_wait_without_running_it():
    ran = []

    @flow("test-grows")
    def v1(ctx, input):
        return ctx.wait("approval")

    store.start("test-grows", {})

    @flow("test-grows")
    def v2(ctx, input):
        ctx.step("notify", lambda: ran.append(1))
        return ctx.wait("approval")

    (check,) = store.check_replay(flow="test-grows")
    assert not check.ok
    assert check.detail == "after the log the flow now asks for step 'notify', not wait 'approval'"
    assert ran == []


def test_start_inside_an_outer_transaction_never_commits_on_its_own(crashing):
    with transaction.atomic():
        Group.objects.create(name="claimed")
        pk, outcome = store.start(crashing, {})
        assert outcome.status == "crashed"
        Group.objects.create(name="after the crash")  # the outer transaction still works
        transaction.set_rollback(True)
    assert not FlowInstance.objects.filter(pk=pk).exists()
    assert not Group.objects.exists()


def test_a_step_whose_query_fails_does_not_break_the_outer_transaction():
    def bad_query():
        Group.objects.create(name="written by the failing step")
        with connection.cursor() as cursor:
            cursor.execute("SELECT * FROM no_such_table")

    def good_write():
        return Group.objects.create(name="written by the step").pk

    @flow("test-db-steps")
    def db_steps(ctx, input):
        ctx.step("good", good_write)
        ctx.step("bad", bad_query)

    with transaction.atomic():
        pk, outcome = store.start("test-db-steps", {})
        assert outcome.status == "crashed" and "in step 'bad'" in outcome.detail
        assert Group.objects.create(name="outer").pk  # still usable
    assert sorted(Group.objects.values_list("name", flat=True)) == ["outer", "written by the step"]
    assert [row[1:3] for row in log_of(pk)] == [("step", "good"), ("error", "bad")]


def test_a_body_whose_query_fails_is_crashed_and_rolled_back():
    @flow("test-db-body")
    def db_body(ctx, input):
        ctx.step("good", lambda: Group.objects.create(name="step").pk)
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT * FROM no_such_table")
        except Exception:
            pass  # swallowed, but the transaction is broken on Postgres
        return "done"

    with transaction.atomic():
        pk, outcome = store.start("test-db-body", {})
        Group.objects.create(name="outer")
    assert pk is not None
    if connection.vendor == "postgresql":
        assert outcome.status == "crashed" and "in the flow body" in outcome.detail
        assert log_of(pk) == []  # the step's write was rolled back, so it is not logged
        assert list(Group.objects.values_list("name", flat=True)) == ["outer"]


def test_a_crash_does_not_disturb_other_instances(crashing):
    waiting, _ = store.start("approval", {"n": 1})
    crashed, _ = store.start(crashing, {})
    also_waiting, _ = store.start("approval", {"n": 2})
    assert store.status(crashed).status == "crashed"
    assert store.resume(waiting, "yes").value == {"approved": "yes"}
    assert store.resume(also_waiting, "no").value == {"approved": "no"}


def test_instances_filters():
    a, _ = store.start("approval", {})
    b, _ = store.start("approval", {})
    store.resume(b, 1)
    assert [i.pk for i in store.instances()] == [b, a]
    assert [i.pk for i in store.instances(status="suspended")] == [a]
    assert [i.pk for i in store.instances(flow="approval", status="done")] == [b]
    assert [i.pk for i in store.instances(tag="approval")] == [a]
    assert list(store.instances(flow="nope")) == []


# ── concurrency: Postgres only ──────────────────────────────────────────────────────


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_resumes_exactly_one_applies(postgres):
    @flow("test-slow")
    def slow(ctx, input):
        answer = ctx.wait("go")
        ctx.step("slow", lambda: time.sleep(0.3))  # holds the row lock a while
        return answer

    pk, _ = store.start("test-slow", {})
    barrier = threading.Barrier(2)
    outcomes = []

    def resume(value):
        try:
            barrier.wait()
            outcomes.append(store.resume(pk, value))
        finally:
            connection.close()

    threads = [threading.Thread(target=resume, args=(v,)) for v in ("first", "second")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    applied = [o for o in outcomes if o.ok]
    refused = [o for o in outcomes if not o.ok]
    assert len(applied) == 1 and len(refused) == 1
    assert refused[0].error in {"already_resumed", "already_done"}
    assert [row[1] for row in log_of(pk)] == ["wait", "step"]
    assert store.status(pk).value == applied[0].value


@pytest.mark.django_db(transaction=True)
def test_an_instance_started_in_one_process_is_resumed_by_another(postgres):
    pk, _ = store.start("approval", {"from": "this process"})
    settings = connection.settings_dict
    url = "postgres://{USER}:{PASSWORD}@{HOST}:{PORT}/{NAME}".format(
        **{k: settings[k] or "" for k in ("USER", "PASSWORD", "HOST", "PORT", "NAME")}
    )
    script = (
        "import django, json; django.setup(); from flows import store; "
        f"o = store.resume({pk}, 'from the other process'); print(json.dumps(o.as_dict()))"
    )
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert '"status": "done"' in done.stdout
    assert store.status(pk).value == {"approved": "from the other process"}


@pytest.mark.django_db
@pytest.mark.parametrize("instance_id", ["²", "١٢", "99999999999999999999", "-1", "", None, 1.5])
def test_odd_instance_ids_are_no_such_instance_never_an_exception(instance_id):
    for outcome in (
        store.status(instance_id),
        store.resume(instance_id, True),
        store.cancel(instance_id),
        store.retry(instance_id),
    ):
        assert outcome.error == "no_such_instance"


@pytest.mark.django_db(transaction=True)
def test_every_value_a_resume_accepts_replays_as_it_was_given():
    # The log is read back in one query and parsed by orjson: a value that would come back
    # changed (a wide integer as a float, an integral float as an int) is refused up front,
    # and what is accepted comes back equal and of the same type.
    from flows.store import _read_log

    @flow("test.echo_waits")
    def echo_waits(ctx, input):
        return [ctx.wait("value") for _ in range(10)]

    try:
        instance_id, _ = store.start("test.echo_waits", {})
        accepted = [2**63 - 1, -(2**63), 2**64 - 1, 1e15, 1.5, 1e-7, 0.1, 2**53 + 1, -0.0]
        refused = [2**64, -(2**63) - 1, 10**400, 1e16, -2e20]
        for value in refused:
            assert store.resume(instance_id, value).error == "not_json", value
        for value in accepted:
            assert store.resume(instance_id, value).status == "suspended", value
        replayed = [entry[2] for entry in _read_log(FlowInstance.objects.get(pk=instance_id))]
    finally:
        unregister_flow("test.echo_waits")
    assert replayed == accepted
    assert [type(value) for value in replayed] == [type(value) for value in accepted]
