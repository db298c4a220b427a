"""The triggers pipeline end to end: signed POSTs over HTTP to a node served by gunicorn,
Redis as the broker, a real Celery worker, the test database on Postgres."""

from __future__ import annotations

import time

import pytest

from fedsx.models import InboxEntry
from flows.models import FlowInstance
from triggers.models import Firing

from ..triggers.conftest import add_trigger
from .services import Node, manage, wait_until

pytestmark = pytest.mark.e2e


def inbox(node, name: str = "demo") -> str:
    return f"{node.base_url}/actors/{name}/inbox"


def applied_count() -> int:
    return InboxEntry.objects.filter(triggers_applied_at__isnull=False).count()


def assert_exactly_once(expected_entries: int) -> None:
    entries = InboxEntry.objects.count()
    assert entries == expected_entries
    assert not InboxEntry.objects.filter(triggers_applied_at__isnull=True).exists()
    firings = list(Firing.objects.values_list("inbox_entry_id", "trigger_cid"))
    assert len(firings) == len(set(firings)) == entries  # one trigger: one firing per entry
    assert FlowInstance.objects.count() == entries


def test_a_signed_follow_starts_the_trigger_flow(node, worker, sender):
    add_trigger(label="approve follows")
    response = sender.post(inbox(node), sender.follow(f"{node.base_url}/actors/demo"))
    assert response.status_code == 202, response.text
    firing = wait_until(lambda: Firing.objects.filter(outcome="suspended").first(), 20, "firing")
    instance = FlowInstance.objects.get(pk=firing.flow_instance_id)
    assert (instance.flow_name, instance.status, instance.waiting_tag) == (
        "approval",
        "suspended",
        "approval",
    )
    assert instance.input["actor"] == sender.ap_id
    assert instance.input["recipient"] == f"{node.base_url}/actors/demo"
    assert InboxEntry.objects.get().triggers_applied_at is not None


def test_the_same_activity_delivered_twice_fires_once(node, worker, sender):
    add_trigger(flow_name="test.done")
    follow = sender.follow(f"{node.base_url}/actors/demo")
    assert sender.post(inbox(node), follow).status_code == 202
    assert sender.post(inbox(node), follow).status_code == 202
    assert sender.post(f"{node.base_url}/inbox", follow).status_code == 202
    wait_until(lambda: Firing.objects.exists(), 20, "the firing")
    time.sleep(1)  # room for a wrong second firing to show up
    assert Firing.objects.count() == 1 and FlowInstance.objects.count() == 1


def test_one_flow_crashing_does_not_stop_the_other(node, worker, sender):
    add_trigger(label="crash", flow_name="test.crash")
    add_trigger(label="done", flow_name="test.done")
    assert (
        sender.post(inbox(node), sender.follow(f"{node.base_url}/actors/demo")).status_code == 202
    )
    wait_until(lambda: Firing.objects.count() == 2, 20, "two firings")
    outcomes = dict(Firing.objects.values_list("trigger__label", "outcome"))
    assert outcomes == {"crash": "crashed", "done": "done"}
    assert sorted(FlowInstance.objects.values_list("status", flat=True)) == ["crashed", "done"]


def test_broker_down_then_up_the_sweeper_applies_every_entry(
    node, worker, sender, redis, broker_env
):
    add_trigger(flow_name="test.done")
    redis.stop()
    for _ in range(10):
        response = sender.post(inbox(node), sender.follow(f"{node.base_url}/actors/demo"))
        assert response.status_code == 202, response.text
    assert InboxEntry.objects.count() == 10
    assert applied_count() == 0
    redis.start()
    result = manage(broker_env, "triggers", "sweep", "--older-than", "0", "--json")
    assert result.returncode == 0, result.stderr
    wait_until(lambda: applied_count() == 10, 60, "the swept entries to be applied")
    assert_exactly_once(10)


def test_worker_killed_mid_batch_every_entry_applied_once(node, worker, sender, broker_env):
    add_trigger(flow_name="test.slow")
    for _ in range(40):
        assert (
            sender.post(inbox(node), sender.follow(f"{node.base_url}/actors/demo")).status_code
            == 202
        )
    wait_until(lambda: Firing.objects.count() >= 3, 30, "the worker to be busy")
    worker.kill()  # SIGKILL to the worker and its pool processes
    assert applied_count() < 40, "the batch finished before the kill; make it slower"
    worker.start()
    result = manage(broker_env, "triggers", "sweep", "--older-than", "0")
    assert result.returncode == 0, result.stderr
    wait_until(lambda: applied_count() == 40, 90, "every entry to be applied")
    assert_exactly_once(40)


def test_embedded_default_starts_the_flow_in_process(
    base_env, log_dir, node_port, demo_actor, sender
):
    """No CELERY_BROKER_URL: tasks run in the web process right after the commit."""
    add_trigger()
    env = {**base_env, "FEDSX_BASE_URL": f"http://127.0.0.1:{node_port}"}
    server = Node(env, log_dir, node_port, workers=1)
    server.start()
    try:
        response = sender.post(inbox(server), sender.follow(f"{server.base_url}/actors/demo"))
        assert response.status_code == 202, response.text
        # applied before the 202 went out: in process, after the commit
        firing = Firing.objects.get()
        assert firing.outcome == "suspended"
        assert firing.flow_instance.flow_name == "approval"
    finally:
        server.stop()
