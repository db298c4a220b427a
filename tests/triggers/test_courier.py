"""The courier (fedsx/jobs.py): committed ids leave the web process in few, timely tasks."""

import threading
import time

from fedsx import jobs


def recording_publish(monkeypatch) -> tuple[list[list[int]], threading.Semaphore]:
    batches: list[list[int]] = []
    published = threading.Semaphore(0)

    def publish(kind: jobs.JobKind, ids: list[int]) -> bool:
        batches.append(list(ids))
        published.release()
        return True

    monkeypatch.setattr(jobs, "publish", publish)
    return batches, published


def test_an_entry_after_a_quiet_spell_is_published_at_once(monkeypatch):
    batches, published = recording_publish(monkeypatch)
    courier = jobs.Courier(interval=60.0)  # a second publish would wait a minute
    started = time.monotonic()
    courier.put("triggers", [1])
    assert published.acquire(timeout=5)
    assert time.monotonic() - started < 5
    assert batches == [[1]]


def test_entries_arriving_within_the_interval_share_one_task(monkeypatch):
    batches, published = recording_publish(monkeypatch)
    courier = jobs.Courier(interval=0.5)
    courier.put("triggers", [1])
    assert published.acquire(timeout=5)
    for n in range(2, 12):  # well within half a second of the first publish
        courier.put("triggers", [n])
    assert published.acquire(timeout=5)
    assert batches == [[1], list(range(2, 12))]


def test_entries_waiting_for_the_interval_are_published_by_the_exit_flush(monkeypatch):
    batches, published = recording_publish(monkeypatch)
    courier = jobs.Courier(interval=60.0)
    courier.put("triggers", [1])
    assert published.acquire(timeout=5)
    courier.put("triggers", [2])
    time.sleep(0.05)  # the courier is waiting out its interval: [2] must not be in its hands
    courier.flush()  # what atexit runs
    assert batches == [[1], [2]]


def test_the_exit_flush_waits_for_the_batch_the_courier_is_publishing(monkeypatch):
    # A management command exits right after its commit: the batch its courier is
    # publishing at that moment must not be lost with the daemon thread.
    started, release, done = threading.Event(), threading.Event(), []

    def slow_publish(kind: jobs.JobKind, ids: list[int]) -> bool:
        started.set()
        release.wait(5)
        done.append(list(ids))
        return True

    monkeypatch.setattr(jobs, "publish", slow_publish)
    courier = jobs.Courier(interval=0.0)
    courier.put("triggers", [7])
    assert started.wait(5)  # in the courier thread's hands, no longer queued
    threading.Timer(0.3, release.set).start()
    courier.flush()
    assert done == [[7]]
