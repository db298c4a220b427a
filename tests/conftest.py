import pytest
from rest_framework.test import APIClient

from fedsx.actors import create_local_actor


@pytest.fixture
def client_ap() -> APIClient:
    return APIClient()


@pytest.fixture
def demo(db):
    return create_local_actor("demo")
