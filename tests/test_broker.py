"""The Redis transport that reuses its publish client, against a real Redis."""

import socket
import uuid

import pytest
from kombu import Connection, Exchange, Queue


def redis_up() -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", 6379)) == 0


@pytest.mark.skipif(not redis_up(), reason="needs Redis on 127.0.0.1:6379")
def test_publishes_reuse_one_client_and_arrive():
    name = f"fedsx-test-{uuid.uuid4().hex}"
    queue = Queue(name, Exchange(name), routing_key=name)
    with Connection("redis://127.0.0.1:6379/15", transport="fedsx.broker:Transport") as conn:
        channel = conn.channel()
        producer = conn.Producer(channel)
        clients = set()
        for n in range(3):
            producer.publish(
                {"n": n},
                exchange=queue.exchange,
                routing_key=name,
                declare=[queue],
                serializer="json",
            )
            clients.add(id(channel._create_client()))
        assert len(clients) == 1  # one client, built once
        received = []
        with conn.Consumer(queue, callbacks=[lambda body, msg: (received.append(body), msg.ack())]):
            while len(received) < 3:
                conn.drain_events(timeout=5)
        assert sorted(m["n"] for m in received) == [0, 1, 2]
        queue(channel).delete()
