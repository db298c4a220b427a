import pytest

from fedsx.actors import create_local_actor
from fedsx.models import Actor, Follow
from tests.receiver import Receiver


@pytest.fixture
def bob(db):
    return create_local_actor("bob")


@pytest.fixture
def receiver(settings):
    """A loopback remote server, reachable because it is on the fetch allowlist."""
    with Receiver() as server:
        settings.FEDSX = {**settings.FEDSX, "FETCH_ALLOWLIST": server.host}
        yield server


def remote_actor(ap_id: str, *, inbox: str, shared_inbox: str = "") -> Actor:
    host = ap_id.split("/")[2]
    return Actor.objects.create(
        ap_id=ap_id,
        username=ap_id.rsplit("/", 1)[-1],
        domain=host,
        inbox_url=inbox,
        shared_inbox_url=shared_inbox,
    )


def follows(follower: Actor, followed: Actor, state=Follow.State.ACCEPTED) -> Follow:
    return Follow.objects.create(follower=follower, following=followed, state=state)


def deliveries_in_every_status(sender: Actor, payload: dict, **per_status) -> tuple:
    """A posted activity with one delivery in each status, alternating between the hosts
    remote.example and other.example; ``per_status`` gives fields as functions of the
    status (``last_error=lambda status: ...``). Returns (activity, {status: delivery})."""
    from fedsx.models import Activity, Delivery

    activity = Activity.objects.create(
        ap_id=f"{sender.ap_id}/activities/a1",
        activity_cid="bcid-a1",
        type="Create",
        actor=sender.ap_id,
        payload=payload,
    )
    made = {}
    for n, status in enumerate(Delivery.Status.values):
        host = "remote.example" if n % 2 == 0 else "other.example"
        made[status] = Delivery.objects.create(
            activity=activity,
            sender=sender,
            inbox_url=f"https://{host}/inbox/{status}",
            host=host,
            status=status,
            attempts=n,
            **{field: value(status) for field, value in per_status.items()},
        )
    return activity, made
