import pytest
from rest_framework.test import APIClient

from fedsx import blocks, fetch, inbox, jobs, keys
from fedsx.actors import create_local_actor
from fedsx.tallies import inbox_tally
from triggers.registry import forget_index


@pytest.fixture(autouse=True)
def _fresh_process_caches():
    """Each test starts with empty per-process key and block-list caches: the database is
    rolled back between tests, the caches would not be."""
    keys.forget()
    fetch.forget_unreachable()
    blocks._invalidate()
    inbox._local_actors.clear()
    forget_index()
    yield
    jobs.stop_in_process()  # in-process work a test started must not run in a later test
    inbox_tally.counts.clear()  # nor its inbox counts be flushed into a later test, or at exit
    keys.forget()
    fetch.forget_unreachable()
    blocks._invalidate()
    inbox._local_actors.clear()


@pytest.fixture
def client_ap() -> APIClient:
    return APIClient()


@pytest.fixture
def demo(db):
    return create_local_actor("demo")
