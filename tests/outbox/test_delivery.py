"""Delivery over real HTTP to a loopback receiver: signing, classification, retries, host
health, ordering and the SSRF guard. ``deliver(ids)`` is called directly: it is what the
task and the embedded node's thread run."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from fedsx import delivery, hosts, outbox
from fedsx.httpsig import HttpRequest, load_public_key, parse_signature, verify_request
from fedsx.models import Delivery, Follow, Host
from tests.receiver import Reply

from .conftest import follows, remote_actor

Status = Delivery.Status


def post_to(sender, receiver, path="/users/amy/inbox", shared="", direct=False, **fields):
    """A Note to a remote follower on the receiver (or, ``direct``, to that actor only)."""
    amy = remote_actor(
        receiver.url(path.removesuffix("/inbox")), inbox=receiver.url(path), shared_inbox=shared
    )
    follows(amy, sender)
    audience = {"to": [amy.ap_id]} if direct else {"cc": [sender.followers_url]}
    activity = outbox.post(sender, {"type": "Note", "content": "hi", **audience, **fields})
    return activity, activity.deliveries.get()


def run(*deliveries) -> None:
    delivery.deliver([d.pk for d in deliveries])
    for d in deliveries:
        d.refresh_from_db()


def due_now(*deliveries) -> None:
    Delivery.objects.filter(pk__in=[d.pk for d in deliveries]).update(
        next_attempt_at=timezone.now()
    )


def verifies(received, sender) -> bool:
    request = HttpRequest.build(
        "POST", received.path, list(received.headers.items()), received.body
    )
    parsed = parse_signature(request)
    verify_request(
        request,
        parsed,
        load_public_key(sender.public_key_pem),
        now=timezone.now(),
        max_skew=300,
        max_age=3600,
    )
    return parsed.key_id == sender.key_id


@pytest.mark.django_db
def test_a_delivery_is_signed_posted_and_recorded(demo, receiver):
    activity, job = post_to(demo, receiver)
    run(job)
    assert job.status == Status.DELIVERED and job.attempts == 1 and job.last_status == 202
    (got,) = receiver.received
    assert got.activity["id"] == activity.ap_id
    assert got.headers["Content-Type"] == "application/activity+json"
    assert "fedsx" in got.headers["User-Agent"]
    assert verifies(got, demo)
    assert "Digest" in got.headers  # draft-cavage, what Mastodon verifies, by default
    run(job)  # delivered is final: a second run sends nothing
    assert len(receiver.received) == 1


@pytest.mark.django_db
def test_500_is_retried_later_then_delivered(demo, receiver):
    receiver.script("/users/amy/inbox", Reply(500))
    _, job = post_to(demo, receiver)
    run(job)
    assert (job.status, job.attempts, job.last_status) == (Status.PENDING, 1, 500)
    assert job.next_attempt_at > timezone.now()
    run(job)  # not due yet: nothing sent
    assert len(receiver.received) == 1
    due_now(job)
    run(job)
    assert (job.status, job.attempts) == (Status.DELIVERED, 2)


@pytest.mark.django_db
def test_429_honours_retry_after(demo, receiver):
    receiver.script("/users/amy/inbox", Reply(429, {"Retry-After": "120"}))
    _, job = post_to(demo, receiver)
    run(job)
    wait = (job.next_attempt_at - timezone.now()).total_seconds()
    assert job.status == Status.PENDING and 110 < wait <= 125


@pytest.mark.django_db
@pytest.mark.parametrize("code", [400, 403, 404, 405, 422, 501])
def test_a_refusal_fails_for_good(demo, receiver, code):
    receiver.script("/users/amy/inbox", Reply(code))
    _, job = post_to(demo, receiver)
    run(job)
    assert (job.status, job.last_status) == (Status.FAILED, code)


@pytest.mark.django_db
def test_410_from_a_personal_inbox_marks_the_actor_gone(demo, receiver):
    receiver.script("/users/amy/inbox", Reply(410))
    _, job = post_to(demo, receiver)
    run(job)
    assert job.status == Status.FAILED
    job.recipient.refresh_from_db()
    assert job.recipient.gone_at is not None
    assert not Follow.objects.filter(follower=job.recipient).exists()


@pytest.mark.django_db
def test_401_tries_the_other_scheme_at_once_and_the_host_remembers(demo, receiver):
    receiver.script("/users/amy/inbox", Reply(401))
    _, job = post_to(demo, receiver)
    run(job)
    assert job.status == Status.DELIVERED
    first, second = receiver.received
    assert "Signature-Input" not in first.headers and "Signature-Input" in second.headers
    assert Host.objects.get(host=receiver.host).signature_scheme == "rfc9421"


@pytest.mark.django_db
def test_401_to_both_schemes_is_retried(demo, receiver):
    receiver.script("/users/amy/inbox", Reply(401), Reply(401))
    _, job = post_to(demo, receiver)
    run(job)
    assert (job.status, job.last_status) == (Status.PENDING, 401)
    assert len(receiver.received) == 2


@pytest.mark.django_db
def test_a_receiver_slower_than_the_timeout_is_retried(demo, receiver, settings):
    settings.FEDSX = {**settings.FEDSX, "DELIVERY_TIMEOUT_SECONDS": 0.3}
    receiver.script("/users/amy/inbox", Reply(202, delay=1.0))
    _, job = post_to(demo, receiver)
    run(job)
    assert job.status == Status.PENDING and job.last_status is None
    assert "timeout" in job.last_error


@pytest.mark.django_db
def test_refused_connections_then_up(demo, receiver):
    _, job = post_to(demo, receiver)
    receiver.stop()
    run(job)
    assert job.status == Status.PENDING and job.attempts == 1 and job.last_error
    receiver.start()
    due_now(job)
    run(job)
    assert job.status == Status.DELIVERED and len(receiver.received) == 1


@pytest.mark.django_db
def test_past_the_window_a_delivery_expires(demo, receiver, settings):
    settings.FEDSX = {**settings.FEDSX, "DELIVERY_MAX_ATTEMPTS": 2}
    receiver.default = Reply(503)
    _, job = post_to(demo, receiver)
    run(job)
    due_now(job)
    run(job)
    assert (job.status, job.attempts) == (Status.EXPIRED, 2)


@pytest.mark.django_db
def test_breaker_opens_holds_probes_and_closes(demo, receiver, settings):
    settings.FEDSX = {**settings.FEDSX, "BREAKER_THRESHOLD": 2, "BREAKER_COOLOFF_SECONDS": 60}
    receiver.default = Reply(503)
    jobs = [post_to(demo, receiver, path=f"/u{i}/inbox", direct=True)[1] for i in range(4)]
    run(jobs[0])
    run(jobs[1])
    host = Host.objects.get(host=receiver.host)
    assert host.state == Host.State.OPEN
    sent = len(receiver.received)
    run(jobs[2], jobs[3])  # held: no attempt spent, nothing sent
    assert [j.status for j in jobs[2:]] == [Status.HELD, Status.HELD]
    assert [j.attempts for j in jobs[2:]] == [0, 0]
    assert len(receiver.received) == sent
    # The cool-off is over: exactly one probe goes; it succeeds and releases the rest.
    Host.objects.filter(pk=host.pk).update(retry_at=timezone.now() - timedelta(seconds=1))
    receiver.default = Reply(202)
    probes = hosts.probes_due()
    assert probes == [jobs[2].pk]
    delivery.deliver(probes)
    host.refresh_from_db()
    assert host.state == Host.State.OK and host.consecutive_failures == 0
    for job in jobs:
        job.refresh_from_db()
    assert jobs[2].status == Status.DELIVERED
    assert jobs[3].status == Status.DELIVERED  # released and dispatched in order


@pytest.mark.django_db
def test_an_unavailable_host_keeps_its_deliveries_until_cleared(demo, receiver, settings):
    _, job = post_to(demo, receiver)
    Host.objects.create(
        host=receiver.host,
        state=Host.State.UNAVAILABLE,
        unavailable_since=timezone.now(),
        retry_at=timezone.now() + timedelta(hours=1),
    )
    run(job)
    assert job.status == Status.HELD and not receiver.received
    released = hosts.clear(receiver.host)
    assert released == [job.pk]
    run(job)
    assert job.status == Status.DELIVERED


@pytest.mark.django_db
def test_an_inbox_on_a_private_address_is_never_connected_to(demo, receiver, settings):
    settings.FEDSX = {**settings.FEDSX, "FETCH_ALLOWLIST": ""}  # loopback no longer allowed
    _, job = post_to(demo, receiver)
    run(job)
    assert job.status == Status.FAILED
    assert "refused_url" in job.last_error
    assert receiver.received == []


@pytest.mark.django_db
def test_an_undo_is_not_sent_before_the_follow_it_undoes(demo, receiver):
    bob = remote_actor(receiver.url("/bob"), inbox=receiver.url("/bob/inbox"))
    follow = outbox.post(demo, {"type": "Follow", "object": bob.ap_id, "to": [bob.ap_id]})
    undo = outbox.post(demo, {"type": "Undo", "object": follow.payload, "to": [bob.ap_id]})
    first, second = follow.deliveries.get(), undo.deliveries.get()
    receiver.script("/bob/inbox", Reply(503))
    run(second)  # waits: its Follow is not settled
    assert second.status == Status.PENDING and second.attempts == 0 and not receiver.received
    run(first)  # 503: retried later; the Undo still waits
    run(second)
    assert second.attempts == 0
    due_now(first)
    run(first)
    assert first.status == Status.DELIVERED
    due_now(second)
    run(second)
    assert second.status == Status.DELIVERED
    assert [r.activity["type"] for r in receiver.received] == ["Follow", "Follow", "Undo"]


@pytest.mark.django_db
def test_a_claimed_delivery_is_not_sent_twice(demo, receiver):
    _, job = post_to(demo, receiver)
    assert [d.pk for d in delivery.claim([job.pk])] == [job.pk]
    assert delivery.claim([job.pk]) == []  # leased: a second worker gets nothing
    assert delivery.deliver([job.pk]) == 0
    assert not receiver.received
    # A worker killed with the lease: once it runs out, the sweeper hands it out again.
    Delivery.objects.filter(pk=job.pk).update(claimed_until=timezone.now() - timedelta(seconds=1))
    Delivery.objects.filter(pk=job.pk).update(next_attempt_at=timezone.now() - timedelta(minutes=1))
    assert job.pk in delivery.overdue()
    run(job)
    assert job.status == Status.DELIVERED and len(receiver.received) == 1


@pytest.mark.django_db
def test_a_private_inbox_named_by_a_remote_actor_document_is_never_connected_to(demo, settings):
    from tests.keyserver import KeyServer

    with KeyServer() as peer:
        settings.FEDSX = {**settings.FEDSX, "FETCH_ALLOWLIST": f"127.0.0.1:{peer.port}"}
        ap_id = f"{peer.origin}/users/mal"
        peer.serve(
            "/users/mal",
            {
                "id": ap_id,
                "type": "Person",
                "inbox": f"{ap_id}/inbox",
                "endpoints": {"sharedInbox": "http://10.255.0.1/inbox"},  # internal
            },
        )
        activity = outbox.post(demo, {"type": "Note", "content": "hi", "to": [ap_id]})
    job = activity.deliveries.get()  # the actor was resolved from its document
    run(job)
    assert job.status == Status.FAILED and "refused_url" in job.last_error
    assert job.inbox_url == "http://10.255.0.1/inbox"  # its shared inbox, never reached
