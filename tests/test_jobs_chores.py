"""The jobs layer's chores (fedsx/jobs.py): housekeeping every serving process runs on its
one ticker thread, with a broker configured too, where the ticker does not sweep."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connections

from fedsx import jobs, tallies
from fedsx.models import InboxTally
from fedsx.tallies import inbox_tally


@pytest.fixture
def serving_with_broker(settings, monkeypatch):
    """A serving process of a host with a real broker: not eager, a broker URL."""
    from celery import current_app

    settings.FEDSX = {"BASE_URL": "http://testserver", "JOBS_IN_PROCESS_THREADS": True}
    monkeypatch.setitem(current_app.conf, "task_always_eager", False)
    monkeypatch.setitem(current_app.conf, "broker_url", "redis://127.0.0.1:6379/13")
    monkeypatch.setattr(jobs, "_serving", False)
    monkeypatch.setattr(jobs, "_chores", dict(jobs._chores))  # what a test adds goes with it
    assert not jobs.runs_in_process()
    swept = []
    monkeypatch.setattr(jobs, "sweep", swept.append)
    yield swept
    jobs.stop_in_process()


def wait_for(condition, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_a_chore_runs_on_the_ticker_of_a_serving_process_with_a_broker(serving_with_broker):
    ran_on: list[threading.Thread] = []
    jobs.every(0.1, lambda: ran_on.append(threading.current_thread()), name="test-chore")
    jobs.serving()
    assert wait_for(lambda: ran_on, 5.0)
    assert ran_on[0] is jobs.ticker().thread  # on the ticker, not on a request's thread
    assert serving_with_broker == []  # sweeps are the broker's workers' and beat's


def test_a_failing_chore_is_logged_and_the_others_still_run(serving_with_broker, caplog):
    ticker = jobs.Ticker(start=False)
    ran = []
    jobs.every(60, lambda: 1 / 0, name="broken")
    jobs.every(60, lambda: ran.append(1), name="fine")
    ticker.tick()
    ticker.tick()  # not due again within its interval
    assert ran == [1]
    assert "chore broken failed" in caplog.text


@pytest.mark.django_db(transaction=True)
def test_the_inbox_tally_is_flushed_by_the_chore_which_closes_its_connection(
    serving_with_broker, monkeypatch
):
    chore = jobs._chores[tallies.CHORE]
    assert chore.run == inbox_tally.flush and chore.interval == tallies.FLUSH_SECONDS
    jobs.every(0.1, chore.run, name=tallies.CHORE)  # no 5 s wait in a test
    used = []
    jobs.every(0.1, lambda: used.append(connections["default"]), name="look")
    inbox_tally.add("accepted")
    jobs.serving()
    assert wait_for(lambda: InboxTally.objects.filter(outcome="accepted", count=1).exists())
    if connections["default"].vendor != "sqlite":  # an in-memory SQLite is never closed
        jobs.stop_in_process()
        ticker_connection = used[-1]
        assert ticker_connection is not connections["default"]  # the ticker thread's own
        assert ticker_connection.connection is None  # closed after its tick
