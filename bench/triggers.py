"""Triggers benchmarks: matching cost, guard cost, and end-to-end latency with a real worker.

Run:
    .venv/bin/python bench/triggers.py matching   # targets: < 1 ms/activity at 10,000 triggers
    .venv/bin/python bench/triggers.py guards     # aim: < 2 ms for 1,000 guarded triggers
    DATABASE_URL=postgres://… .venv/bin/python bench/triggers.py latency [--rate 100]
        # p50 < 25 ms, p99 < 100 ms at 100/s; it starts its own Redis, node and worker

``matching`` and ``guards`` run in memory (no database): they time ``TriggerIndex.match``,
the part of ``apply_triggers`` that grows with the number of triggers, against a baseline
measured in the same run: a plain scan of every trigger with JMESPath's own interpreter.
``latency`` serves a node (gunicorn), starts a Celery worker and POSTs signed Follows at a
steady rate, timing each from the POST being sent to its flow instance being committed.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fedsx.server.settings")
os.environ.setdefault("SECRET_KEY", "bench-only")

import django  # noqa: E402

django.setup()

import jmespath  # noqa: E402

from fedsx.cid import json_cid  # noqa: E402
from fedsx.models import host_of  # noqa: E402
from triggers.guards import is_true  # noqa: E402
from triggers.models import Trigger  # noqa: E402
from triggers.registry import TriggerIndex  # noqa: E402

TYPES = ["Create", "Follow", "Like", "Announce", "Undo", "Delete", "Update", "Accept", "Flag"]
BASE = "https://node.example"


def actor_names(n: int = 1000) -> list[str]:
    return [f"user{i}" for i in range(n)]


def make_trigger(pk: int, **fields) -> Trigger:
    trigger = Trigger(pk=pk, flow_name=fields.pop("flow_name", "approval"), **fields)
    trigger.trigger_cid = json_cid(trigger.spec)
    return trigger


def activity_for(rng: random.Random, recipient: str) -> dict:
    sender = f"https://remote{rng.randrange(50)}.example/users/u{rng.randrange(1000)}"
    kind = rng.choice(TYPES)
    return {
        "id": f"{sender}/activities/{rng.randrange(10**9)}",
        "type": kind,
        "actor": sender,
        "object": {
            "type": "Note",
            "attributedTo": sender,
            "content": "hello fediverse " + " ".join(f"w{rng.randrange(5000)}" for _ in range(20)),
        }
        if kind == "Create"
        else f"{BASE}/actors/{recipient}",
        "to": ["https://www.w3.org/ns/activitystreams#Public"],
        "recipient": f"{BASE}/actors/{recipient}",
    }


def random_guard(rng: random.Random, i: int) -> str:
    return rng.choice(
        [
            f"object.attributedTo == 'https://remote{i % 50}.example/users/u{i}'",
            f"actor == 'https://remote{i % 50}.example/users/u{i}'",
            f"contains(object.content, 'w{i}')",
            "object.type == 'Note' && length(to) > `0`",
        ]
    )


def spread_triggers(n: int, rng: random.Random) -> list[Trigger]:
    """n triggers over 1,000 local actors: mostly one actor each, some guarded or scoped."""
    names = actor_names()
    triggers = []
    for i in range(n):
        fields = {"activity_type": rng.choice(TYPES), "actor_scope": [rng.choice(names)]}
        if rng.random() < 0.01:
            fields["actor_scope"] = []  # every inbox
        if rng.random() < 0.3:
            fields["guard"] = random_guard(rng, i)
        if rng.random() < 0.1:
            fields["sender_scope"] = [f"remote{rng.randrange(50)}.example"]
        triggers.append(make_trigger(i + 1, **fields))
    return triggers


_parsed: dict[str, jmespath.parser.ParsedResult] = {}


def scan_baseline(triggers: list[Trigger], activity: dict, recipient: str) -> int:
    """What an unindexed matcher does: every trigger, JMESPath's interpreter for guards
    (parsed once, as a cache would)."""
    sender = activity["actor"]
    host = host_of(sender)
    matched = 0
    for t in triggers:
        if not t.enabled or t.activity_type not in ("*", activity["type"]):
            continue
        if t.actor_scope and recipient not in t.actor_scope:
            continue
        if t.sender_scope and sender not in t.sender_scope and host not in t.sender_scope:
            continue
        try:
            if t.guard and not is_true(parsed(t.guard).search(activity)):
                continue
        except jmespath.exceptions.JMESPathError:
            continue
        matched += 1
    return matched


def parsed(guard: str) -> jmespath.parser.ParsedResult:
    if guard not in _parsed:
        _parsed[guard] = jmespath.compile(guard)
    return _parsed[guard]


def per_call_us(fn, calls: list[tuple], repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        for args in calls:
            fn(*args)
        best = min(best, time.perf_counter() - started)
    return best / len(calls) * 1e6


def bench_matching() -> None:
    print("matching: triggers spread over 1,000 local actors; per activity (best of 3)")
    print(f"{'triggers':>9} {'index µs':>10} {'scan µs':>10} {'speed-up':>9}  target < 1000 µs")
    rng = random.Random(5)
    names = actor_names()
    for n in (10, 1_000, 10_000):
        triggers = spread_triggers(n, rng)
        index = TriggerIndex(triggers)
        calls = []
        for _ in range(2_000):
            recipient = rng.choice(names)
            activity = activity_for(rng, recipient)
            calls.append((activity["type"], recipient, activity["actor"], activity))
        indexed = per_call_us(index.match, calls)
        scan_calls = [(triggers, a, r) for (_, r, _, a) in calls[:200]]
        scanned = per_call_us(scan_baseline, scan_calls, repeat=1)
        verdict = "ok" if indexed < 1000 else "MISSED"
        print(f"{n:>9,} {indexed:>10.1f} {scanned:>10.1f} {scanned / indexed:>8.0f}x  {verdict}")


def bench_guards() -> None:
    print("guards: 1,000 guarded triggers on the activity's type and recipient; per activity")
    print(f"{'guards':<44} {'index µs':>10} {'jmespath µs':>12} {'speed-up':>9}  aim < 2000 µs")
    rng = random.Random(7)
    shapes = {
        "equality (path == 'text'), distinct": lambda i: (
            f"object.attributedTo == 'https://remote{i % 50}.example/users/u{i}'"
        ),
        "keywords (contains(path, 'text')), distinct": lambda i: (
            f"contains(object.content, 'w{i}')"
        ),
        "two conditions (&&, no equality), distinct": lambda i: (
            f"starts_with(actor, 'https://remote{i % 50}.') && contains(object.content, 'w{i}')"
        ),
        "nothing to index (length(...) > n), distinct": lambda i: (
            f"length(object.content) > `{i}` || starts_with(actor, 'https://x{i}.')"
        ),
        "mixed: the four shapes of `matching`": lambda i: random_guard(rng, i),
    }
    for label, guard_of in shapes.items():
        triggers = [
            make_trigger(i + 1, activity_type="Create", actor_scope=["demo"], guard=guard_of(i))
            for i in range(1000)
        ]
        index = TriggerIndex(triggers)
        calls = []
        for _ in range(300):
            activity = activity_for(rng, "demo") | {"type": "Create"}
            activity["object"] = {
                "type": "Note",
                "attributedTo": activity["actor"],
                "content": " ".join(f"w{rng.randrange(5000)}" for _ in range(20)),
            }
            calls.append(("Create", "demo", activity["actor"], activity))
        indexed = per_call_us(index.match, calls)
        scanned = per_call_us(
            scan_baseline, [(triggers, a, r) for (_, r, _, a) in calls[:60]], repeat=1
        )
        verdict = "ok" if indexed < 2000 else "over"
        print(
            f"{label:<44} {indexed:>10.1f} {scanned:>12.1f} {scanned / indexed:>8.1f}x  {verdict}"
        )


def bench_latency(rate: float, seconds: float) -> None:
    """POST signed Follows at a steady rate; time each until its flow instance is committed.

    Serves the node (gunicorn, 2 workers) and a Celery worker (2 processes) against the
    DATABASE_URL database (migrated here) and a Redis of its own on a free loopback port.
    The commit is seen by polling the flows table every 2 ms from this process, so each
    figure includes up to ~2 ms of polling delay.
    """
    import tempfile

    from django.core.management import call_command
    from django.db import connection

    from fedsx.actors import create_local_actor
    from fedsx.models import Actor
    from flows.models import FlowInstance
    from tests.e2e.services import Node, RedisServer, Sender, Worker, free_port

    if connection.vendor != "postgresql":
        sys.exit("latency: set DATABASE_URL=postgres://… (a scratch database: it is migrated)")
    call_command("migrate", verbosity=0)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    logs = Path(tempfile.mkdtemp(prefix="bench-triggers-"))
    redis = RedisServer(logs)
    redis.start()
    env = {
        **os.environ,
        "CELERY_BROKER_URL": redis.url,
        "FEDSX_BASE_URL": base,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "DJANGO_SETTINGS_MODULE": "fedsx.server.settings",
    }
    node, worker = (
        Node(
            env,
            logs,
            port,
            workers=int(os.environ.get("BENCH_WEB_WORKERS", "2")),
            threads=int(os.environ.get("BENCH_WEB_THREADS", "1")),
        ),
        Worker(
            env,
            logs,
            app=os.environ.get("BENCH_WORKER_APP", "fedsx.server"),
            pool=os.environ.get("BENCH_WORKER_POOL", "threads"),
            concurrency=int(os.environ.get("BENCH_WORKER_CONCURRENCY", "8")),
            loglevel="WARNING",  # a log line per task is CPU the measurement would pay for
        ),
    )
    try:
        from django.test.utils import override_settings

        with override_settings(FEDSX={"BASE_URL": base}):
            recipient = Actor.objects.filter(username="bench", is_local=True).first()
            recipient = recipient or create_local_actor("bench")
        Actor.objects.filter(ap_id="https://remote.example/users/bench-sender").delete()
        sender = Sender("https://remote.example/users/bench-sender")
        Trigger.objects.filter(label="bench latency").delete()
        trigger = make_trigger(None, label="bench latency", activity_type="Follow")
        trigger.actor_scope = ["bench"]
        trigger.save()
        node.start()
        worker.start()
        inbox = f"{base}/actors/bench/inbox"
        total = int(rate * seconds)
        requests = [
            sender.signed(inbox, sender.follow(f"{base}/actors/bench")) for _ in range(total)
        ]  # signed in advance: the load process stays light
        sent: dict[str, float] = {}
        statuses: list[int] = []

        def post(activity_id: str, body: bytes, headers: dict) -> None:
            sent[activity_id] = time.time()
            statuses.append(sender.client.post(inbox, content=body, headers=headers).status_code)

        from concurrent.futures import ThreadPoolExecutor

        def steady(batch: list) -> None:
            began = time.perf_counter()
            with ThreadPoolExecutor(max_workers=16) as pool:
                for n, request in enumerate(batch):
                    delay = began + n / rate - time.perf_counter()
                    if delay > 0:
                        time.sleep(delay)
                    pool.submit(post, *request)

        # Two seconds of the same load first, unmeasured: connections, caches and the
        # worker's prefetch warm up, as on a node that has been running.
        warmup = [
            sender.signed(inbox, sender.follow(f"{base}/actors/bench"))
            for _ in range(int(rate * 2))
        ]
        steady(warmup)
        time.sleep(2)
        sent.clear()
        statuses.clear()
        steady(requests)

        # No polling while the load runs (it would compete for the same two cores): each
        # instance's updated_at is stamped just before its transaction commits.
        def committed() -> dict[str, float]:
            rows = FlowInstance.objects.filter(
                flow_name="approval", input__activity__id__in=list(sent)
            ).values_list("input__activity__id", "updated_at")
            return {activity_id: at.timestamp() for activity_id, at in rows}

        deadline = time.perf_counter() + 60
        done = committed()
        while len(done) < total and time.perf_counter() < deadline:
            time.sleep(0.5)
            done = committed()
        latencies = sorted((done[a] - sent[a]) * 1000 for a in sent if a in done)
        accepted = sum(1 for s in statuses if s == 202)
        print(f"latency: {total} signed Follows at {rate:.0f}/s over {seconds:.0f} s, ")
        print("  gunicorn 2 workers, celery worker (see BENCH_WORKER_POOL), Redis broker, Postgres")
        print(f"  answered 202: {accepted}/{total}; flow instances committed: {len(latencies)}")
        if latencies:
            p50 = statistics.median(latencies)
            p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
            print(
                f"  POST sent → flow instance committed: p50 {p50:.1f} ms (target < 25), "
                f"p99 {p99:.1f} ms (target < 100), max {latencies[-1]:.1f} ms"
            )
    finally:
        worker.stop()
        node.stop()
        redis.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("section", nargs="*", default=["matching", "guards"])
    parser.add_argument("--rate", type=float, default=100.0, help="latency: activities/s")
    parser.add_argument("--seconds", type=float, default=20.0, help="latency: how long")
    args = parser.parse_args()
    for section in args.section:
        if section == "matching":
            bench_matching()
        elif section == "guards":
            bench_guards()
        elif section == "latency":
            bench_latency(rate=args.rate, seconds=args.seconds)
        else:
            parser.error(f"unknown section {section!r}")
        print()


if __name__ == "__main__":
    main()
