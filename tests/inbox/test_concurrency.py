"""Concurrent deliveries of one activity, through the real view, on Postgres."""

import json
import threading
import time

import psycopg
import pytest
from django.db import connection, connections
from django.test import Client

from fedsx.actors import create_local_actor
from fedsx.kernel import append_inbox
from fedsx.models import Activity, InboxEntry, OutboxEntry

from .helpers import deliver, remote_sender

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="row locks and races need Postgres"
)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path", ["/actors/demo/inbox", "/inbox"])
def test_concurrent_repeat_deliveries_append_once_and_all_get_202(path):
    demo = create_local_actor("demo")
    sender = remote_sender("https://remote.example/users/bob")
    activity = {
        "id": "https://remote.example/create/1",
        "type": "Create",
        "actor": sender.ap_id,
        "to": [demo.ap_id],
        "object": {"id": "https://remote.example/n/1", "type": "Note"},
    }
    # known already (delivered to alice): the race is on demo's entry, not on the activity
    create_local_actor("alice")
    assert deliver(Client(), "/actors/alice/inbox", activity, sender).status_code == 202
    statuses: list[int] = []
    barrier = threading.Barrier(8)

    def one() -> None:
        try:
            barrier.wait()
            statuses.append(deliver(Client(), path, activity, sender).status_code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=one) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [202] * 8, [json.dumps(s) for s in statuses]
    assert Activity.objects.count() == 1
    assert InboxEntry.objects.filter(actor=demo).count() == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path", ["/actors/demo/inbox", "/inbox"])
def test_the_append_runs_as_a_prepared_statement_with_a_generic_plan(path):
    # Django disables psycopg's preparation, which silently ignores prepare=True; and with
    # the recipients as an array Postgres re-planned on every execution anyway. Either way
    # the append was planned afresh for each delivery, which doubled its cost.
    demo = create_local_actor("demo")
    sender = remote_sender("https://remote.example/users/bob")
    deliveries = 7  # Postgres tries five custom plans before it settles on the generic one
    for n in range(deliveries):
        activity = {
            "id": f"https://remote.example/create/{n}",
            "type": "Create",
            "actor": sender.ap_id,
            "to": [demo.ap_id],
            "object": {"id": f"https://remote.example/n/{n}", "type": "Note"},
        }
        assert deliver(Client(), path, activity, sender).status_code == 202
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements"
            " WHERE statement LIKE %s",
            ["%INSERT INTO fedsx_inboxentry%"],
        )
        plans = cursor.fetchall()
    assert len(plans) == 1
    generic, custom = plans[0]
    assert generic + custom == deliveries
    assert generic >= 1
    assert InboxEntry.objects.filter(actor=demo).count() == deliveries


def note_for(sender, n: int | str, kind: str = "Create", to: list[str] | None = None) -> dict:
    return {
        "id": f"https://remote.example/{kind.lower()}/{n}",
        "type": kind,
        "actor": sender.ap_id,
        "to": to or [],
        "object": {"id": f"https://remote.example/n/{n}", "type": "Note"},
    }


def in_other_transaction(work, *, started: threading.Event) -> threading.Thread:
    """Run ``work(cursor)`` in a transaction on a connection of its own, then commit."""

    def run() -> None:
        other = connections.create_connection("default")
        other.set_autocommit(False)
        try:
            with other.cursor() as cursor:
                work(cursor, started)
            other.commit()
        finally:
            other.close()

    thread = threading.Thread(target=run)
    thread.start()
    assert started.wait(5)
    return thread


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("kind", ["Create", "Delete"])  # Delete: the projections' path
def test_an_entry_committed_while_the_append_waits_is_not_added_twice(kind):
    alice, bob = create_local_actor("alice"), create_local_actor("bob")
    sender = remote_sender("https://remote.example/users/carol")
    activity = note_for(sender, 1, kind, to=[alice.ap_id, bob.ap_id])
    append_inbox(activity, [alice])
    stored = Activity.objects.get()

    def add_bobs_entry(cursor, started: threading.Event) -> None:
        cursor.execute(
            "UPDATE fedsx_actor SET inbox_seq = inbox_seq + 1 WHERE id = %s RETURNING inbox_seq",
            [bob.pk],
        )
        seq = cursor.fetchone()[0]
        started.set()
        time.sleep(0.5)  # the append below now waits for bob's row
        cursor.execute(
            "INSERT INTO fedsx_inboxentry (actor_id, activity_id, seq, created_at)"
            " VALUES (%s, %s, %s, now())",
            [bob.pk, stored.pk, seq],
        )

    other = in_other_transaction(add_bobs_entry, started=threading.Event())
    try:
        result = append_inbox(activity, [bob])  # lost the race: must not raise
    finally:
        other.join()
    assert (result.created, result.entries) == (False, [])
    assert InboxEntry.objects.filter(actor=bob).count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_fan_out_does_not_deadlock_with_rows_referencing_its_recipients():
    # The triggers' transactions insert rows referencing actors (firings), whose foreign-key
    # checks take FOR KEY SHARE on them, in their own order. An append that locked its
    # recipients FOR UPDATE deadlocked with them.
    alice, bob = create_local_actor("alice"), create_local_actor("bob")
    sender = remote_sender("https://remote.example/users/carol")
    other_activity = Activity.objects.create(
        activity_cid="other", type="Note", actor="x", payload={}
    )

    def reference_bob_then_alice(cursor, started: threading.Event) -> None:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        insert = (
            "INSERT INTO fedsx_outboxentry (actor_id, activity_id, seq, created_at)"
            " VALUES (%s, %s, 1, now())"
        )
        cursor.execute(insert, [bob.pk, other_activity.pk])
        started.set()
        time.sleep(0.3)
        cursor.execute(insert, [alice.pk, other_activity.pk])

    other = in_other_transaction(reference_bob_then_alice, started=threading.Event())
    try:
        result = append_inbox(note_for(sender, 2), [alice, bob])
    finally:
        other.join()
    assert len(result.entries) == 2
    assert OutboxEntry.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_a_schema_change_under_a_prepared_append_costs_one_retry():
    demo = create_local_actor("demo")
    sender = remote_sender("https://remote.example/users/bob")
    assert deliver(Client(), "/actors/demo/inbox", note_for(sender, 1), sender).status_code == 202

    def alter_seq(to_type: str) -> None:
        # From another connection, as a migration would: psycopg forgets its prepared
        # statements when it sees an ALTER go through its own.
        other = connections.create_connection("default")
        try:
            with other.cursor() as cursor:
                cursor.execute(f"ALTER TABLE fedsx_inboxentry ALTER COLUMN seq TYPE {to_type}")
        finally:
            other.close()

    alter_seq("numeric")
    try:
        # the prepared statement's cached plan now returns another type for seq
        response = deliver(Client(), "/actors/demo/inbox", note_for(sender, 2), sender)
        assert response.status_code == 202, response.content
    finally:
        alter_seq("bigint")
    assert InboxEntry.objects.filter(actor=demo).count() == 2


@pytest.mark.django_db(transaction=True)
def test_a_deadlock_victim_append_is_retried(monkeypatch):
    from django.db import OperationalError

    from fedsx import kernel

    demo = create_local_actor("demo")
    sender = remote_sender("https://remote.example/users/bob")
    real, calls = kernel._append_in_one_statement, []

    def deadlocked_once(record, recipients):
        calls.append(record.ap_id)
        if len(calls) == 1:
            try:
                raise psycopg.errors.DeadlockDetected("deadlock detected")
            except psycopg.errors.DeadlockDetected as cause:
                raise OperationalError("deadlock detected") from cause
        return real(record, recipients)

    monkeypatch.setattr(kernel, "_append_in_one_statement", deadlocked_once)
    result = append_inbox(note_for(sender, 3), [demo])
    assert len(calls) == 2
    assert len(result.entries) == 1
    assert InboxEntry.objects.filter(actor=demo).count() == 1


@pytest.mark.django_db(transaction=True)
def test_nothing_is_prepared_when_the_host_turned_preparation_off(monkeypatch):
    # Behind PgBouncer in transaction mode an operator sets OPTIONS prepare_threshold=None.
    monkeypatch.setitem(connection.settings_dict["OPTIONS"], "prepare_threshold", None)
    connection.close()  # the next connection is made with the operator's options
    demo = create_local_actor("demo")
    sender = remote_sender("https://remote.example/users/bob")
    for n in range(2):
        response = deliver(Client(), "/actors/demo/inbox", note_for(sender, n), sender)
        assert response.status_code == 202
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements")
        assert cursor.fetchone()[0] == 0
    assert InboxEntry.objects.filter(actor=demo).count() == 2
    connection.close()
