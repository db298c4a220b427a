import pytest

from flows import registry


@pytest.fixture(autouse=True)
def restore_registry():
    """Flows registered by a test are forgotten after it; the project's flows stay."""
    saved = dict(registry._flows)
    yield
    registry._flows.clear()
    registry._flows.update(saved)


@pytest.fixture
def postgres(db):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("row locks and concurrent sessions need Postgres (set DATABASE_URL)")
