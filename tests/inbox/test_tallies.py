"""The inbox's kept counts (fedsx.tallies): every request counted once by outcome, in
process, and added to the hourly rows in batches, never a write per request."""

from __future__ import annotations

import time
from collections import Counter

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from fedsx import tallies
from fedsx.models import InboxTally
from fedsx.tallies import Tally, inbox_tally

from .helpers import deliver
from .test_gate import follow

INBOX = "/actors/demo/inbox"


@pytest.fixture(autouse=True)
def _empty_tally():
    inbox_tally.counts.clear()
    inbox_tally.flushed_at = time.monotonic()  # no inline flush inside a test's requests
    yield
    inbox_tally.counts.clear()


def saved() -> dict[str, int]:
    return dict(InboxTally.objects.values_list("outcome", "count"))


@pytest.mark.django_db
def test_accepted_and_refused_requests_are_counted_by_outcome(client, demo, bob_remote):
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
    hour = InboxTally.objects.values_list("hour", flat=True).first()
    assert hour == timezone.now().replace(minute=0, second=0, microsecond=0)


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
    inbox_tally.flush()  # nothing counted: no query
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
    assert tally.counts[(int(time.time() // 3600), "too_large")] == 1
    monkeypatch.undo()
    tally.add("too_large")
    tally.flush()
    assert saved() == {"too_large": 2}
