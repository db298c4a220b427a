"""GET /metrics: the text parses with prometheus_client's own parser, carries the counters
and the database gauges, and is served to loopback clients and token holders only."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from fedsx import hosts, metrics
from fedsx.models import Delivery, Host
from flows import store
from tests.outbox.conftest import deliveries_in_every_status

from .conftest import parse

pytestmark = pytest.mark.django_db
TOKEN = "s3cret-metrics-token"


@pytest.fixture
def token(settings):
    settings.FEDSX = {**settings.FEDSX, "METRICS_TOKEN": TOKEN}


def scrape(client, **extra):
    return client.get("/metrics", **extra)


def test_the_text_parses_and_carries_counters_and_gauges(client, demo):
    metrics.inbox_accepted()
    store.start("approval", {"activity": {"type": "Follow"}, "actor": "a"})
    response = scrape(client)  # the test client's REMOTE_ADDR is 127.0.0.1
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    families = parse(response.content.decode())
    accepted = families["fedsx_inbox_requests"][
        ("fedsx_inbox_requests_total", (("outcome", "accepted"),))
    ]
    assert accepted >= 1
    waiting = families["fedsx_flow_instances_waiting"]
    assert waiting[("fedsx_flow_instances_waiting", (("kind", "operator"),))] == 1
    assert waiting[("fedsx_flow_instances_waiting", (("kind", "timer"),))] == 0
    assert families["fedsx_metrics_database_up"][("fedsx_metrics_database_up", ())] == 1
    for name in ("fedsx_inbox_append_seconds", "fedsx_delivery_attempts", "fedsx_flow_starts"):
        assert name in families


def test_the_delivery_gauges_count_pending_and_held_per_held_host(client, demo, settings):
    settings.FEDSX = {**settings.FEDSX, "METRICS_TOP_HOSTS": 1}
    deliveries_in_every_status(demo, {"type": "Note"})  # one pending, one held
    Delivery.objects.create(
        activity=Delivery.objects.first().activity,
        sender=demo,
        inbox_url="https://third.example/inbox",
        host="third.example",
        status=Delivery.Status.HELD,
    )
    held_host = Delivery.objects.get(status="held", inbox_url__contains="/inbox/held").host
    Host.objects.create(host=held_host, state=Host.State.OPEN)
    Host.objects.create(host="third.example", state=Host.State.UNAVAILABLE)
    Host.objects.create(host="fine.example")
    families = parse(scrape(client).content.decode())
    counts = families["fedsx_deliveries"]
    assert counts[("fedsx_deliveries", (("status", "pending"),))] == 1
    assert counts[("fedsx_deliveries", (("status", "held"),))] == 2
    hosts = families["fedsx_hosts_held"]
    assert hosts[("fedsx_hosts_held", (("state", "open"),))] == 1
    assert hosts[("fedsx_hosts_held", (("state", "unavailable"),))] == 1
    # One host at most (METRICS_TOP_HOSTS): the first by count, then by name.
    assert families["fedsx_host_held_deliveries"] == {
        ("fedsx_host_held_deliveries", (("host", min(held_host, "third.example")),)): 1
    }


def test_how_long_the_host_held_longest_has_been_held(client, demo, settings):
    longest = ("fedsx_hosts_held_longest_seconds", ())

    def gauge() -> float:
        return parse(scrape(client).content.decode())["fedsx_hosts_held_longest_seconds"][longest]

    assert gauge() == 0
    settings.FEDSX = {**settings.FEDSX, "BREAKER_THRESHOLD": 2}
    host = Host.objects.create(host="down.example")
    hosts.record_down(host, "503")
    assert (host.state, gauge()) == (Host.State.OK, 0)  # a failure below the threshold
    hosts.record_down(host, "503")
    assert host.state == Host.State.OPEN
    two_hours_ago = timezone.now() - timedelta(hours=2)
    Host.objects.filter(pk=host.pk).update(held_since=two_hours_ago)
    Host.objects.create(host="lately.example", state=Host.State.OPEN, held_since=timezone.now())
    assert 7190 < gauge() < 7300
    hosts.record_down(host, "503")  # failing on while held: still held since then
    assert 7190 < gauge() < 7300
    hosts.clear("down.example")
    assert gauge() < 60


def test_unapplied_entries_and_their_age(client, demo):
    from tests.triggers.conftest import append, follow

    append(demo, follow())
    families = parse(scrape(client).content.decode())
    unapplied = families["fedsx_inbox_unapplied_entries"]
    assert unapplied[("fedsx_inbox_unapplied_entries", ())] == 1
    assert (
        families["fedsx_inbox_unapplied_oldest_seconds"][
            ("fedsx_inbox_unapplied_oldest_seconds", ())
        ]
        >= 0
    )


@pytest.mark.parametrize(
    "extra",
    [
        {"REMOTE_ADDR": "203.0.113.7"},
        {"REMOTE_ADDR": "::ffff:203.0.113.7"},
        {"REMOTE_ADDR": "not-an-address"},
        # Through a reverse proxy on this machine: REMOTE_ADDR is the proxy's.
        {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "203.0.113.7"},
        {"REMOTE_ADDR": "127.0.0.1", "HTTP_FORWARDED": "for=203.0.113.7"},
    ],
)
def test_refused_to_other_clients_without_a_token(client, token, extra):
    response = scrape(client, **extra)
    assert response.status_code == 403
    assert response.json() == {
        "error": "forbidden",
        "detail": "metrics are served to loopback or token holders only",
    }


@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "::ffff:127.0.0.1"])
def test_allowed_to_loopback_clients_when_no_token_is_configured(client, address):
    assert scrape(client, REMOTE_ADDR=address).status_code == 200


@pytest.mark.parametrize("address", ["127.0.0.1", "::1"])
def test_once_a_token_is_configured_loopback_needs_it_too(client, token, address):
    # A reverse proxy that adds no forwarding header makes every client look like loopback.
    response = scrape(client, REMOTE_ADDR=address)
    assert (response.status_code, response.json()["error"]) == (403, "forbidden")
    with_token = scrape(client, REMOTE_ADDR=address, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert with_token.status_code == 200


def test_allowed_with_the_token_from_anywhere(client, token):
    response = scrape(client, REMOTE_ADDR="203.0.113.7", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert "fedsx_inbox_requests" in parse(response.content.decode())


@pytest.mark.parametrize(
    "header", [f"Bearer {TOKEN}x", "Bearer ", f"Basic {TOKEN}", "Bearer s3cret"]
)
@pytest.mark.parametrize("address", ["203.0.113.7", "127.0.0.1"])
def test_a_wrong_token_is_refused_even_from_loopback(client, token, header, address):
    response = scrape(client, REMOTE_ADDR=address, HTTP_AUTHORIZATION=header)
    assert (response.status_code, response.json()["error"]) == (403, "bad_token")


def test_no_token_configured_refuses_every_token(client):
    response = scrape(client, REMOTE_ADDR="203.0.113.7", HTTP_AUTHORIZATION="Bearer ")
    assert response.status_code == 403


def test_only_get_is_answered(client):
    response = client.post("/metrics", REMOTE_ADDR="127.0.0.1")
    assert (response.status_code, response.json()["error"]) == (405, "method_not_allowed")


def test_a_failing_database_is_a_gauge_not_a_failed_scrape(client, monkeypatch):
    from django.db import DatabaseError

    from fedsx.metrics import gauges

    def broken():
        raise DatabaseError("the database is down")

    monkeypatch.setattr(gauges, "unapplied", broken)
    response = scrape(client)
    assert response.status_code == 200
    families = parse(response.content.decode())
    assert families["fedsx_metrics_database_up"][("fedsx_metrics_database_up", ())] == 0
    assert "fedsx_inbox_requests" in families
