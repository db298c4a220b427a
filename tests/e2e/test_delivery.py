"""Deliveries through a real worker and celery beat, to a loopback receiver: a worker
SIGKILLed mid-batch and a broker down when posting lose nothing, and nothing is sent
twice beyond at-least-once (the POSTs in flight when the worker died)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from fedsx.models import Actor, Delivery, Follow
from tests.receiver import Receiver, Reply

from .services import Beat, Worker, manage, wait_until

pytestmark = pytest.mark.django_db(transaction=True)

FOLLOWERS = 8


@pytest.fixture
def receiver():
    with Receiver() as server:
        yield server


@pytest.fixture
def delivery_env(broker_env, receiver) -> dict:
    return {**broker_env, "FEDSX_FETCH_ALLOWLIST": receiver.host}


@pytest.fixture
def beat(delivery_env, log_dir):
    process = Beat(delivery_env, log_dir)
    yield process
    process.stop()


@pytest.fixture
def delivery_worker(delivery_env, log_dir):
    process = Worker(delivery_env, log_dir, app="fedsx.server.celery")
    process.start()
    yield process
    process.stop()


@pytest.fixture
def followers(demo_actor, receiver) -> list[str]:
    """FOLLOWERS remote followers of demo on the receiver, each with an inbox of its own."""
    paths = []
    for n in range(FOLLOWERS):
        path = f"/users/f{n}/inbox"
        follower = Actor.objects.create(
            ap_id=receiver.url(f"/users/f{n}"),
            username=f"f{n}",
            domain=receiver.host,
            inbox_url=receiver.url(path),
        )
        Follow.objects.create(follower=follower, following=demo_actor, state="accepted")
        paths.append(path)
    return paths


def post_note(env: dict, demo: Actor) -> str:
    document = f'{{"type": "Note", "content": "hi", "cc": ["{demo.followers_url}"]}}'
    result = manage(env, "post", "--as", "demo", "-", input_text=document)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def all_delivered() -> bool:
    statuses = list(Delivery.objects.values_list("status", flat=True))
    return len(statuses) == FOLLOWERS and set(statuses) == {"delivered"}


def posts_per_inbox(receiver: Receiver, paths: list[str]) -> dict[str, int]:
    return {path: len(receiver.posts_to(path)) for path in paths}


def test_a_worker_killed_mid_batch_loses_nothing(
    delivery_env, delivery_worker, beat, receiver, followers, demo_actor
):
    receiver.default = Reply(202, delay=3.0)  # slow: the worker is busy when it dies
    beat.start()
    post_note(delivery_env, demo_actor)
    receiver.wait_for(1, timeout=30)
    delivery_worker.kill()  # SIGKILL, its pool processes too
    in_flight = len(receiver.received)
    assert not all_delivered()
    # The killed worker's claims are leases (3 times the timeout + 30 s); skip that wait.
    Delivery.objects.filter(status="pending").update(
        claimed_until=timezone.now() - timedelta(seconds=1)
    )
    receiver.default = Reply(202)
    delivery_worker.start()
    wait_until(all_delivered, 90, "every delivery, after the restart", interval=0.5)
    counts = posts_per_inbox(receiver, followers)
    assert all(count >= 1 for count in counts.values()), counts
    # Only what was in flight at the kill may have gone twice.
    assert sum(counts.values()) - FOLLOWERS <= in_flight, counts


def test_a_broker_down_when_posting_loses_nothing(
    delivery_env, delivery_worker, beat, receiver, redis, followers, demo_actor
):
    redis.stop()
    activity = post_note(delivery_env, demo_actor)  # the command's publish fails: logged
    assert Delivery.objects.filter(activity__ap_id=activity, status="pending").count() == FOLLOWERS
    assert not receiver.received
    redis.start()
    beat.start()  # the sweep hands out the fresh deliveries whose task never came
    wait_until(all_delivered, 90, "every delivery, after the broker came back", interval=0.5)
    assert posts_per_inbox(receiver, followers) == dict.fromkeys(followers, 1)
