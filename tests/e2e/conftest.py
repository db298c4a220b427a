"""End-to-end fixtures: real Postgres (the test database pytest-django made), a Redis
broker of our own, the node under gunicorn and a Celery worker, all on loopback.

The tests are ``transaction=True``: what they write is committed and visible to the node
and the worker, which connect to the same test database.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from django.db import connection

from fedsx.actors import create_local_actor

from .services import (
    ROOT,
    Database,
    FederatedNode,
    Node,
    RedisServer,
    Sender,
    Worker,
    free_port,
    manage,
)


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture
def services_available(transactional_db):
    if connection.vendor != "postgresql":
        pytest.skip("end-to-end tests need DATABASE_URL=postgres://… (CI sets it)")
    if shutil.which("redis-server") is None:
        pytest.skip("end-to-end tests need redis-server (CI has it)")


@pytest.fixture
def log_dir(tmp_path) -> Path:
    path = tmp_path / "logs"
    path.mkdir()
    return path


@pytest.fixture
def redis(services_available, log_dir):
    server = RedisServer(log_dir)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def base_env(log_dir) -> dict:
    db = connection.settings_dict
    url = f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST'] or '127.0.0.1'}:"
    url += f"{db['PORT'] or 5432}/{db['NAME']}"
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE"}
    }
    env.update(
        DATABASE_URL=url,
        SECRET_KEY="e2e-only-not-secret",
        DJANGO_SETTINGS_MODULE="fedsx.server.settings",
        PYTHONPATH=str(ROOT),
        FEDSX_DATA_DIR=str(log_dir),
        CONN_MAX_AGE="0",  # each process lets go of the test database between requests
    )
    return env


@pytest.fixture
def node_port(settings) -> int:
    """The node's port, chosen first so local actor ids match the node's base URL."""
    port = free_port()
    settings.FEDSX = {"BASE_URL": f"http://127.0.0.1:{port}"}
    return port


@pytest.fixture
def broker_env(base_env, redis, node_port) -> dict:
    return {
        **base_env,
        "CELERY_BROKER_URL": redis.url,
        "FEDSX_BASE_URL": f"http://127.0.0.1:{node_port}",
    }


@pytest.fixture
def node(broker_env, log_dir, node_port, demo_actor):
    server = Node(broker_env, log_dir, node_port)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def worker(broker_env, log_dir):
    process = Worker(broker_env, log_dir)
    process.start()
    yield process
    process.stop()


@pytest.fixture
def demo_actor(services_available, node_port):
    return create_local_actor("demo")


@pytest.fixture
def sender(services_available):
    alice = Sender()
    yield alice
    alice.client.close()


@pytest.fixture
def two_nodes(services_available, base_env, redis, log_dir):
    """Nodes A and B, each with its own database (made from one migrated template), its
    own gunicorn and worker and its own broker database, allowed to reach each other."""
    admin = base_env["DATABASE_URL"].rsplit("/", 1)[0] + "/postgres"
    # Named after the test database, so runs against different databases never share them.
    prefix = connection.settings_dict["NAME"]
    template = Database(admin, f"{prefix}_e2e_template")
    template.create()
    result = manage({**base_env, "DATABASE_URL": template.url}, "migrate", "--noinput")
    assert result.returncode == 0, result.stderr
    ports = [free_port(), free_port()]
    allow = ",".join(f"127.0.0.1:{port}" for port in ports)
    nodes = []
    try:
        for index, (name, port) in enumerate(zip("ab", ports, strict=True)):
            db = Database(admin, f"{prefix}_e2e_{name}")
            db.create(template=template.name)
            env = {
                **base_env,
                "CELERY_BROKER_URL": redis.url.rsplit("/", 1)[0] + f"/{index + 1}",
                "FEDSX_FETCH_ALLOWLIST": allow,
            }
            node = FederatedNode(name, db, env, log_dir, port)
            nodes.append(node)
            node.start()
        yield nodes
    finally:
        for node in nodes:
            node.stop()
            node.db.drop()
        template.drop()
