"""The inbox's kept counts (fedsx.tallies): every request counted once by outcome, in
process, and added to the hourly rows in batches, never a write per request."""

from __future__ import annotations

import time
from collections import Counter
from datetime import datetime

import pytest
from django.db import connection
from django.db.models import Sum
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from fedsx import tallies
from fedsx.models import Actor, InboxTally
from fedsx.tallies import Tally, inbox_tally
from tests.metrics.conftest import value

from .helpers import deliver, stored_counts
from .test_gate import follow
from .test_keys import sender_at

INBOX = "/actors/demo/inbox"
REQUESTS = "fedsx_inbox_requests_total"


@pytest.fixture(autouse=True)
def _empty_tally():
    inbox_tally.counts.clear()
    inbox_tally.flushed_at = time.monotonic()  # no inline flush inside a test's requests
    yield
    inbox_tally.counts.clear()


def saved() -> dict[str, int]:
    """Counts by outcome, summed over hours: a test may run across the top of an hour."""
    return dict(InboxTally.objects.values_list("outcome").annotate(n=Sum("count")).order_by())


def this_hour() -> datetime:
    return timezone.now().replace(minute=0, second=0, microsecond=0)


@pytest.mark.django_db
def test_accepted_and_refused_requests_are_counted_by_outcome(client, demo, bob_remote):
    first_hour = this_hour()
    for n in range(3):
        assert deliver(client, INBOX, follow(bob_remote, n=n), bob_remote).status_code == 202
    assert deliver(client, INBOX, follow(bob_remote, n=0), bob_remote).status_code == 202  # again
    refused = client.post(INBOX, b"{}", content_type="text/plain")
    assert refused.status_code == 415
    tampered = deliver(client, INBOX, follow(bob_remote, n=7), bob_remote, body=b'{"x": 1}')
    assert tampered.status_code == 400
    assert saved() == {}  # counted in process only, so far
    inbox_tally.flush()
    assert saved() == {"accepted": 4, "unsupported_media_type": 1, "digest_mismatch": 1}
    hours = set(InboxTally.objects.values_list("hour", flat=True))
    assert hours <= {first_hour, this_hour()}  # the hour each request came in


@pytest.mark.django_db
def test_counting_writes_nothing_until_a_flush_adds_to_the_rows(db):
    with CaptureQueriesContext(connection) as queries:
        for _ in range(1000):
            inbox_tally.add("bad_signature")
    assert len(queries) == 0
    inbox_tally.flush()
    inbox_tally.add("bad_signature")
    inbox_tally.add("accepted")
    with CaptureQueriesContext(connection) as queries:
        inbox_tally.flush()
    assert len(queries) == 1  # one upsert for both rows
    assert saved() == {"bad_signature": 1001, "accepted": 1}
    with CaptureQueriesContext(connection) as queries:
        inbox_tally.flush()
    assert len(queries) == 0  # nothing counted since: no query
    assert saved() == {"bad_signature": 1001, "accepted": 1}


@pytest.mark.django_db
def test_a_request_flushes_inline_once_the_interval_is_over(db, monkeypatch):
    tally = Tally()
    tally.add("accepted")
    assert saved() == {}
    monkeypatch.setattr(tally, "flushed_at", time.monotonic() - tallies.FLUSH_SECONDS - 1)
    tally.add("accepted")
    assert saved() == {"accepted": 2}
    assert not tally.counts


@pytest.mark.django_db
def test_a_failed_flush_keeps_the_counts(db, monkeypatch):
    tally = Tally()
    tally.add("too_large")

    def down(counts: Counter) -> None:
        raise ConnectionError("database away")

    monkeypatch.setattr(tallies, "save", down)
    tally.flush()
    assert sum(n for (_, code), n in tally.counts.items() if code == "too_large") == 1
    monkeypatch.undo()
    tally.add("too_large")
    tally.flush()
    assert saved() == {"too_large": 2}


def gone_actor_deletes_itself(client, keyserver, known: bool) -> None:
    sender = sender_at(keyserver.origin, "bob")
    if known:
        Actor.objects.create(ap_id=sender.ap_id, username="bob", domain="127.0.0.1")
    keyserver.serve("/users/bob", {}, status=410)
    delete = {"type": "Delete", "actor": sender.ap_id, "object": sender.ap_id}
    assert deliver(client, INBOX, delete, sender).status_code == 202


@pytest.mark.django_db
@pytest.mark.parametrize("known", [False, True], ids=["unknown", "known"])
def test_a_gone_actors_delete_is_actor_gone_not_accepted_in_both_counts(
    client, demo, keyserver, known
):
    # A 202 that stores nothing: /metrics and the dashboard count it the same, apart.
    before = {code: value(REQUESTS, outcome=code) for code in ("accepted", "actor_gone")}
    gone_actor_deletes_itself(client, keyserver, known)
    assert stored_counts() == (0, 0)
    inbox_tally.flush()
    assert saved() == {"actor_gone": 1}
    assert value(REQUESTS, outcome="actor_gone") == before["actor_gone"] + 1
    assert value(REQUESTS, outcome="accepted") == before["accepted"]


@pytest.mark.django_db
def test_a_method_other_than_post_is_counted_in_both(client, demo):
    before = value(REQUESTS, outcome="method_not_allowed")
    assert client.get(INBOX).status_code == 405
    inbox_tally.flush()
    assert saved() == {"method_not_allowed": 1}
    assert value(REQUESTS, outcome="method_not_allowed") == before + 1
