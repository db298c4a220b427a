"""The guarded client's per-host pools: one small pool per (scheme, host, port), sharing
one SSL context and the guard; a bound on the pools kept (least recently used idle ones
closed), never closing one in use; made anew in a forked process."""

from __future__ import annotations

import os

import httpcore
import httpx
import pytest

from fedsx import client
from tests.receiver import Receiver


@pytest.fixture
def receivers(settings):
    servers = [Receiver() for _ in range(4)]
    settings.FEDSX = {**settings.FEDSX, "FETCH_ALLOWLIST": ",".join(s.host for s in servers)}
    yield servers
    for server in servers:
        server.stop()


@pytest.fixture
def closed(monkeypatch):
    """The ports of the pools closed, in order."""
    ports: list[int | None] = []
    close = client._PoolTransport.close

    def spy(self):
        ports.append(getattr(self, "port", None))
        close(self)

    monkeypatch.setattr(client._PoolTransport, "close", spy)
    new = client.PerHostTransport._new_transport

    def tagged(self):
        transport = new(self)
        transport.port = self._making  # which host's pool, for the spy
        return transport

    acquire = client.PerHostTransport._acquire

    def acquiring(self, key):
        self._making = key[2]
        return acquire(self, key)

    monkeypatch.setattr(client.PerHostTransport, "_new_transport", tagged)
    monkeypatch.setattr(client.PerHostTransport, "_acquire", acquiring)
    return ports


def http(**options) -> tuple[httpx.Client, client.PerHostTransport]:
    transport = client.PerHostTransport(connections=2, **options)
    return httpx.Client(transport=transport, trust_env=False), transport


def test_each_host_has_its_own_small_pool_sharing_one_ssl_context_and_the_guard(receivers):
    session, transport = http()
    with session:
        for server in receivers[:2]:
            for _ in range(2):  # the second reuses the first's kept-alive connection
                assert session.post(server.url("/inbox"), content=b"{}").status_code == 202
        pools = [entry.transport._pool for entry in transport._pools.values()]
        assert [key[2] for key in transport.hosts()] == [s.port for s in receivers[:2]]
        assert all(len(pool.connections) == 1 for pool in pools)
        assert {id(pool._ssl_context) for pool in pools} == {id(transport._ssl_context)}
        assert {id(pool._network_backend) for pool in pools} == {id(transport._backend)}
        assert isinstance(transport._backend, client.GuardedBackend)
        assert all(pool._max_connections == 2 for pool in pools)


def test_the_least_recently_used_idle_pool_is_closed_beyond_the_bound(receivers, closed):
    session, transport = http(kept=2)
    a, b, c, d = (server.url("/inbox") for server in receivers)
    with session:
        session.post(a, content=b"{}")
        session.post(b, content=b"{}")
        session.post(a, content=b"{}")  # a is now the more recently used
        session.post(c, content=b"{}")
        assert closed == [receivers[1].port]  # b went, with its connection
        assert [key[2] for key in transport.hosts()] == [receivers[0].port, receivers[2].port]
        # A pool in use is not closed, whatever its age; it is once it is idle again.
        with session.stream("POST", a, content=b"{}") as busy:
            session.post(d, content=b"{}")
            session.post(b, content=b"{}")
            assert receivers[0].port not in closed
            assert receivers[0].port in [key[2] for key in transport.hosts()]
            assert busy.read() == b'{"status":"ok"}'
        assert closed == [receivers[1].port, receivers[2].port, receivers[3].port]
        # Given back, a is the most recently used: b goes first, then a.
        session.post(c, content=b"{}")
        assert closed[-1] == receivers[1].port
        session.post(d, content=b"{}")
        assert closed[-1] == receivers[0].port
        assert [key[2] for key in transport.hosts()] == [receivers[2].port, receivers[3].port]


def test_an_idle_pool_is_closed_after_the_keep_alive_expiry(receivers, closed):
    session, transport = http(expiry=0.0)
    with session:
        session.post(receivers[0].url("/inbox"), content=b"{}")
        session.post(receivers[1].url("/inbox"), content=b"{}")
        assert closed == [receivers[0].port]
        assert [key[2] for key in transport.hosts()] == [receivers[1].port]


def test_a_failed_request_gives_its_pool_back(receivers):
    session, transport = http(kept=1)
    dead = receivers[3]
    url = dead.url("/inbox")
    dead.stop()
    with session:
        with pytest.raises(httpx.ConnectError):
            session.post(url, content=b"{}")
        (entry,) = transport._pools.values()
        assert entry.busy == 0
        session.post(receivers[0].url("/inbox"), content=b"{}")
        assert [key[2] for key in transport.hosts()] == [receivers[0].port]


def test_get_and_post_share_the_process_client(receivers):
    client.reset()
    first = client.pooled()
    assert client.pooled() is first
    assert isinstance(first._transport, client.PerHostTransport)
    assert first._transport.connections == client.host_pool_size()
    answer = client.post(receivers[0].url("/inbox"), b"{}", {})
    assert answer.status == 202
    assert client.pooled() is first
    client.reset()
    assert client.pooled() is not first


def test_a_forked_process_makes_its_own_client():
    parent = client.pooled()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        ok = client._client is None and client.pooled() is not parent
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0
    assert client.pooled() is parent


def test_the_guard_refuses_through_a_host_pool(settings):
    settings.FEDSX = {**settings.FEDSX, "FETCH_ALLOWLIST": ""}
    transport = client.PerHostTransport(connections=2)
    session = httpx.Client(transport=transport, trust_env=False)
    with session, pytest.raises(httpx.ConnectError) as info:
        session.post("http://127.0.0.1:9/inbox", content=b"{}")
    assert isinstance(info.value.__cause__ or info.value.__context__, client.RefusedAddress)


def test_a_plain_backend_can_be_given(receivers):
    transport = client.PerHostTransport(connections=1, backend=httpcore.SyncBackend())
    with httpx.Client(transport=transport, trust_env=False) as session:
        assert session.post(receivers[0].url("/x"), content=b"{}").status_code == 202
