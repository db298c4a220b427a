"""Concurrent deliveries of one activity, through the real view, on Postgres."""

import json
import threading

import pytest
from django.db import connection, connections
from django.test import Client

from fedsx.actors import create_local_actor
from fedsx.models import Activity, InboxEntry

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
