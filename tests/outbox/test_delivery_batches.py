"""One batch, many answers: the 2xx answers are written in groups, every other answer on its
own at once, and each delivery ends recorded as if alone; the deliveries waiting for the
batch's settled ones are released once, at its end."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from fedsx import delivery, outbox
from fedsx.models import Actor, Delivery, Host
from tests.receiver import Reply

from .conftest import remote_actor
from .test_delivery import run

Status = Delivery.Status


def deliveries_to(sender, receiver, paths: list[str]) -> list[Delivery]:
    """One Note to actors on the receiver, one personal inbox per path."""
    actors = [remote_actor(receiver.url(f"/{p}"), inbox=receiver.url(f"/{p}/inbox")) for p in paths]
    activity = outbox.post(
        sender, {"type": "Note", "content": "hi", "to": [a.ap_id for a in actors]}
    )
    by_inbox = {d.inbox_url: d for d in activity.deliveries.all()}
    return [by_inbox[receiver.url(f"/{p}/inbox")] for p in paths]


def delivery_updates(queries) -> list[str]:
    table = Delivery._meta.db_table
    return [q["sql"] for q in queries if q["sql"].startswith(f'UPDATE "{table}"')]


@pytest.mark.django_db
def test_a_batch_mixing_answers_records_each_delivery(demo, receiver, monkeypatch):
    monkeypatch.setattr(delivery, "GROUP_SIZE", 2)  # several groups in one batch
    replies = {
        "ok1": 202, "ok2": 200, "ok3": 202, "ok4": 201, "ok5": 202,
        "down": 503, "slow": 429, "nope": 404, "gone": 410, "bad": 400,
    }  # fmt: skip
    for path, status in replies.items():
        receiver.script(f"/{path}/inbox", Reply(status))
    jobs = deliveries_to(demo, receiver, list(replies))
    started = timezone.now()
    run(*jobs)
    got = {job.inbox_url.split("/")[-2]: job for job in jobs}
    for path, status in replies.items():
        job = got[path]
        assert (job.attempts, job.last_status, job.claimed_until) == (1, status, None), (
            path,
            job.last_error,
        )
    for path in ("ok1", "ok2", "ok3", "ok4", "ok5"):
        job = got[path]
        assert job.status == Status.DELIVERED and job.last_error == ""
        assert started <= job.delivered_at <= timezone.now()
    for path in ("down", "slow"):
        assert got[path].status == Status.PENDING and got[path].delivered_at is None
        assert got[path].next_attempt_at > timezone.now() and got[path].last_error
    for path in ("nope", "gone", "bad"):
        assert got[path].status == Status.FAILED and got[path].delivered_at is None
    assert Actor.objects.get(pk=got["gone"].recipient_id).gone_at is not None
    host = Host.objects.get(host=receiver.host)
    assert host.consecutive_failures in (0, 1)  # one 503 among answers that reset it
    assert len(receiver.received) == len(replies)


@pytest.mark.django_db
def test_the_2xx_answers_of_a_batch_are_one_update(demo, receiver):
    jobs = deliveries_to(demo, receiver, [f"u{i}" for i in range(8)])
    with CaptureQueriesContext(connection) as queries:
        run(*jobs)
    assert all(job.status == Status.DELIVERED for job in jobs)
    # The claim's lease, then the one for all eight answers.
    assert len(delivery_updates(queries.captured_queries)) == 2
    # The Host row: read once for the batch (made there, on the first one to this host).
    hosts = [q for q in queries.captured_queries if 'FROM "fedsx_host"' in q["sql"]]
    assert len(hosts) <= 2


@pytest.mark.django_db
def test_a_slow_answer_does_not_hold_back_the_others(demo, receiver, monkeypatch):
    monkeypatch.setattr(delivery, "GROUP_SECONDS", 0.05)
    receiver.script("/slow/inbox", Reply(202, delay=1.0))
    slow, *fast = deliveries_to(demo, receiver, ["slow", "a", "b", "c"])
    run(slow, *fast)
    assert all(job.status == Status.DELIVERED for job in (slow, *fast))
    for job in fast:  # written ~0.05 s after their answers, not with the slow one
        assert (slow.delivered_at - job.delivered_at).total_seconds() > 0.5


@pytest.mark.django_db
def test_a_waiting_delivery_goes_once_its_earlier_one_settles_in_the_same_batch(demo, receiver):
    bob = remote_actor(receiver.url("/bob"), inbox=receiver.url("/bob/inbox"))
    follow = outbox.post(demo, {"type": "Follow", "object": bob.ap_id, "to": [bob.ap_id]})
    undo = outbox.post(demo, {"type": "Undo", "object": follow.payload, "to": [bob.ap_id]})
    first, second = follow.deliveries.get(), undo.deliveries.get()
    assert second.waits_for_id == first.pk
    run(first, second)  # the Undo waits; the Follow's settling releases it (run inline)
    assert first.status == Status.DELIVERED and second.status == Status.DELIVERED
    assert [r.activity["type"] for r in receiver.received] == ["Follow", "Undo"]


@pytest.mark.django_db
def test_a_batch_that_settles_nothing_asks_for_no_waiters(demo, receiver):
    receiver.default = Reply(503)
    jobs = deliveries_to(demo, receiver, ["a", "b"])
    with CaptureQueriesContext(connection) as queries:
        run(*jobs)
    assert all(job.status == Status.PENDING for job in jobs)
    assert not [q for q in queries.captured_queries if '."waits_for_id" IN' in q["sql"]]


@pytest.mark.django_db
def test_new_hosts_rows_are_made_together(demo, receiver):
    from tests.receiver import Receiver

    with Receiver() as other:
        from django.conf import settings

        settings.FEDSX = {**settings.FEDSX, "FETCH_ALLOWLIST": f"{receiver.host},{other.host}"}
        a = deliveries_to(demo, receiver, ["a"])[0]
        b = deliveries_to(demo, other, ["b"])[0]
        assert not Host.objects.exists()
        run(a, b)
        assert set(Host.objects.values_list("host", flat=True)) == {receiver.host, other.host}
        assert a.status == b.status == Status.DELIVERED
