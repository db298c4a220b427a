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
