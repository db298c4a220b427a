import pytest

from fedsx.actors import create_local_actor
from tests.keyserver import KeyServer

from .helpers import remote_sender


@pytest.fixture
def alice(db):
    return create_local_actor("alice")


@pytest.fixture
def bob_remote(db):
    return remote_sender("https://remote.example/users/bob")


@pytest.fixture
def keyserver(settings):
    """A loopback 'remote server', reachable because it is on the fetch allowlist."""
    with KeyServer() as server:
        settings.FEDSX = {**settings.FEDSX, "FETCH_ALLOWLIST": f"127.0.0.1:{server.port}"}
        yield server
