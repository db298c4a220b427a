"""Durable time with real processes: celery beat's tick wakes what is due through a real
worker; a timer survives every process restarting; a worker SIGKILLed while timers are
due wakes each of them once afterwards; a receive nobody answers times out."""

from __future__ import annotations

import json
import time

import pytest

from fedsx.actors import create_local_actor
from flows.models import FlowInstance, FlowLogEntry

from .services import Beat, Worker, manage, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def beat(broker_env, log_dir):
    process = Beat(broker_env, log_dir)
    process.start()
    yield process
    process.stop()


def start(env: dict, flow: str, input: dict) -> int:
    result = manage(env, "flows", "start", flow, "--input", json.dumps(input), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["status"] == "suspended", data
    return data["id"]


def done(*pks: int) -> bool:
    return FlowInstance.objects.filter(pk__in=pks, status="done").count() == len(pks)


def sleeps_logged(pk: int) -> int:
    return FlowLogEntry.objects.filter(instance_id=pk, kind="sleep").count()


def test_a_timer_survives_every_process_restarting(broker_env, log_dir, node, redis):
    pk = start(broker_env, "timer", {"seconds": 4})
    node.stop()
    redis.stop()  # nothing running at all while the timer is due
    time.sleep(5)
    redis.start()
    node.start()
    worker, beat = Worker(broker_env, log_dir), Beat(broker_env, log_dir)
    worker.start()
    beat.start()
    try:
        wait_until(lambda: done(pk), 60, "the timer to fire after the restart", interval=0.2)
    finally:
        beat.stop()
        worker.stop()
    result = FlowInstance.objects.get(pk=pk).result
    assert result["woke"] >= result["due"] and sleeps_logged(pk) == 1


def test_a_worker_killed_while_waking_wakes_each_timer_once_afterwards(worker, beat):
    from flows import store
    from tests.triggers import testflows  # noqa: F401  (the worker's app has it too)

    pks = [store.start("test.sleep-then-slow", {"seconds": 1})[0] for _ in range(3)]
    time.sleep(2.5)  # due, and beat has handed them out: the worker is inside the slow step
    worker.kill()  # SIGKILL mid-wake: the wake's transaction never commits
    assert not FlowInstance.objects.filter(pk__in=pks, status="done").exists()
    worker.start()
    wait_until(lambda: done(*pks), 90, "every timer after the kill", interval=0.2)
    assert [sleeps_logged(pk) for pk in pks] == [1] * len(pks)
    steps = FlowLogEntry.objects.filter(instance_id__in=pks, kind="step").count()
    assert steps == len(pks)  # each woke once: one slow step each


def test_a_receive_nobody_answers_times_out(broker_env, node, worker, beat, demo_actor):
    bob = create_local_actor("bob")  # a local target: its inbox gets the Follow, no one answers
    pk = start(broker_env, "follow", {"actor": "demo", "target": bob.ap_id, "timeout": 2})
    assert FlowInstance.objects.get(pk=pk).waiting_kind == "activity"
    wait_until(lambda: done(pk), 60, "the receive to time out", interval=0.2)
    assert FlowInstance.objects.get(pk=pk).result["outcome"] == "timed_out"
