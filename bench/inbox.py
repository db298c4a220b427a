"""Inbox throughput: signed POSTs to the inbox served by gunicorn (2 sync workers) on
Postgres, from a separate load process over loopback, against a *floor* view measured in
the same run (parse JSON, verify one RSA signature, insert one row: bench/floor.py).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/inbox.py [--requests 3000] [--rounds 3] [--dispatch | --metrics]

``BENCH_ACTORS=20`` spreads the activities over 20 local recipients in turn (default: one,
so every append waits for the previous one's lock on that actor's log). ``BENCH_INBOX=shared``
posts to the shared inbox, where most servers deliver, instead of the actor's own.

Keys are already cached (the sender's key is in the database and each worker warms its
cache first). With --dispatch (needs CELERY_BROKER_URL) it also measures the inbox with the
post-commit trigger dispatch switched on, against the same inbox with it off. With --metrics
it measures the inbox with its metrics on (FEDSX METRICS, written to a multiprocess
directory as a served node does) against the same inbox with them off, alternating which
goes first in each round, and checks from /metrics that every accepted request was counted.
It uses its own database, fedsx_bench, which it drops and recreates.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BENCH_DB = os.environ.get("BENCH_DB", "fedsx_bench")  # one per concurrent run
SENDER = "https://remote.example/users/bench"


def bench_database_url() -> str:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        sys.exit("bench/inbox.py needs DATABASE_URL=postgres://... (it creates fedsx_bench)")
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{BENCH_DB}"))


def recreate_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {BENCH_DB}")


def setup_django(env: dict[str, str]) -> None:
    os.environ.update(env)
    import django

    django.setup()


def prepare(port: int, count: int) -> dict[str, list[tuple[str, dict, bytes]]]:
    """Migrate, create the actors, and sign every request in advance."""
    from django.core.management import call_command
    from django.db import connection

    from fedsx import httpsig
    from fedsx.actors import create_local_actor
    from fedsx.crypto import generate_rsa_keypair
    from fedsx.models import Actor

    call_command("migrate", verbosity=0)
    # BENCH_ACTORS local recipients, taken in turn (default 1: every append to one actor).
    locals_ = [create_local_actor("bench")] + [
        create_local_actor(f"bench{i}") for i in range(1, int(os.environ.get("BENCH_ACTORS", "1")))
    ]
    private_pem, public_pem = generate_rsa_keypair()
    Actor.objects.create(
        ap_id=SENDER,
        domain="remote.example",
        key_id=f"{SENDER}#main-key",
        public_key_pem=public_pem,
        followers_url=f"{SENDER}/followers",
    )
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE bench_floor (id bigserial primary key, body jsonb)")

    def signed(path: str, n: int) -> tuple[str, dict, bytes]:
        local = locals_[n % len(locals_)]
        if path.startswith("/actors/"):
            path = f"/actors/{local.username}/inbox"
        activity = {
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": f"{SENDER}/statuses/{path.strip('/').replace('/', '-')}-{n}/activity",
            "type": "Create",
            "actor": SENDER,
            "to": [local.ap_id],
            "object": {
                "id": f"{SENDER}/statuses/{n}",
                "type": "Note",
                "content": "<p>" + "benchmark " * 40 + "</p>",
            },
        }
        body = json.dumps(activity).encode()
        headers = {"Content-Type": "application/activity+json"}
        headers |= httpsig.sign_cavage(
            "POST",
            f"http://127.0.0.1:{port}{path}",
            headers,
            body,
            f"{SENDER}#main-key",
            private_pem,
        )
        return path, headers, body

    return {
        name: [signed(path, n) for n in range(count)]
        for name, path in (("floor", "/floor/inbox"), ("fedsx", fedsx_inbox_path()))
    }


def fedsx_inbox_path() -> str:
    kind = os.environ.get("BENCH_INBOX", "actor")
    if kind not in ("actor", "shared"):
        sys.exit("BENCH_INBOX is 'actor' (the default) or 'shared'")
    return "/inbox" if kind == "shared" else "/actors/bench/inbox"


def post(port: int, request: tuple[str, dict, bytes]) -> tuple[int, float]:
    path, headers, body = request
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", path, body=body, headers=headers)
        status = conn.getresponse().status
    finally:
        conn.close()
    return status, time.perf_counter() - started


def load_process(port: int, requests: list, threads: int, out) -> None:
    with ThreadPoolExecutor(threads) as pool:
        out.put(list(pool.map(lambda r: post(port, r), requests)))


def run_load(port: int, requests: list, processes: int = 2, threads: int = 6) -> dict:
    """Send every request from separate load processes; accepted/s and latencies."""
    queue: multiprocessing.Queue = multiprocessing.Queue()
    shares = [requests[i::processes] for i in range(processes)]
    started = time.perf_counter()
    workers = [
        multiprocessing.Process(target=load_process, args=(port, s, threads, queue)) for s in shares
    ]
    for w in workers:
        w.start()
    results = [r for _ in workers for r in queue.get()]
    elapsed = time.perf_counter() - started
    for w in workers:
        w.join()
    latencies = sorted(latency for status, latency in results)
    statuses = [status for status, _ in results]
    accepted = statuses.count(202)
    return {
        "accepted_per_s": accepted / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
        "accepted": accepted,
        "sent": len(results),
        "other_statuses": sorted(set(statuses) - {202}),
    }


def measure(name: str, port: int, env: dict, requests: list, warmup: int) -> dict:
    from tests.e2e.services import Node

    log_dir = Path(tempfile.mkdtemp(prefix=f"bench-inbox-{name.replace(' ', '-')}-"))
    # A fresh metrics directory per server, as gunicorn's start hook leaves it.
    (log_dir / "metrics").mkdir()
    env = {"PROMETHEUS_MULTIPROC_DIR": str(log_dir / "metrics"), **env}
    node = Node(
        {**os.environ, **env},
        log_dir,
        port,
        workers=2,
        threads=int(os.environ.get("BENCH_WEB_THREADS", "1")),
    )
    node.start()
    try:
        run_load(port, requests[:warmup])  # warms connections and the key caches
        result = run_load(port, requests[warmup:])
        result["counted"] = counted_accepted(port)
        return result
    finally:
        node.stop()


# What metrics add to one accepted request, timed alone in a process writing to a fresh
# multiprocess directory: the inbox's counter and the append's timing wrapper, on, off
# (FEDSX METRICS False) and absent (the bare call).
PER_REQUEST = """
import os, time, django
django.setup()
from django.conf import settings
from fedsx import metrics

def append():
    return None

timed = metrics.timed_append(append)
N = 200_000

def best_of(fn, n=5):
    times = []
    for _ in range(n):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times) / N * 1e6

def instrumented():
    for _ in range(N):
        timed()
        metrics.inbox_accepted()

def bare():
    for _ in range(N):
        append()

on = best_of(instrumented)
settings.FEDSX = {**settings.FEDSX, "METRICS": False}
off = best_of(instrumented)
print(f"{on:.2f} {off:.2f} {best_of(bare):.2f}")
"""


def instrumentation_cost(env: dict) -> tuple[float, float, float]:
    """Microseconds per accepted request: metrics on, off, and the bare call."""
    import subprocess

    directory = tempfile.mkdtemp(prefix="bench-inbox-metrics-")
    done = subprocess.run(
        [sys.executable, "-c", PER_REQUEST],
        cwd=ROOT,
        env={**os.environ, **env, "PROMETHEUS_MULTIPROC_DIR": directory, "BENCH_METRICS": "1"},
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    on, off, bare = (float(x) for x in done.stdout.split())
    return on, off, bare


def counted_accepted(port: int) -> float:
    """fedsx_inbox_requests_total{outcome="accepted"} as /metrics says (warm-up included)."""
    from prometheus_client.parser import text_string_to_metric_families

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
    finally:
        conn.close()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "fedsx_inbox_requests_total" and sample.labels == {
                "outcome": "accepted"
            }:
                return sample.value
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of all runs, interleaved")
    parser.add_argument(
        "--dispatch",
        action="store_true",
        help="also measure with the post-commit trigger dispatch on",
    )
    parser.add_argument(
        "--metrics",
        action="store_true",
        help="measure the inbox with its metrics on against off (and no floor)",
    )
    args = parser.parse_args()
    if args.metrics and args.dispatch:
        sys.exit("--metrics and --dispatch are separate comparisons: pick one")
    from tests.e2e.services import free_port

    port = free_port()
    url = bench_database_url()
    recreate_database(url)
    env = {
        "DATABASE_URL": url,
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "SECRET_KEY": "bench-only",
        "FEDSX_BASE_URL": f"http://127.0.0.1:{port}",
        "FEDSX_DATA_DIR": str(ROOT / "data" / "bench"),
    }
    setup_django(env)
    warmup = 200
    print(f"signing {2 * (args.requests + warmup)} requests ...", flush=True)
    signed = prepare(port, args.requests + warmup)
    broker = os.environ.get("CELERY_BROKER_URL", "")
    runs = [
        ("floor", "floor", {}),
        ("fedsx", "fedsx", {"BENCH_DISPATCH": "0", "CELERY_BROKER_URL": ""}),
    ]
    if args.metrics:
        off = {"BENCH_DISPATCH": "0", "CELERY_BROKER_URL": ""}
        runs = [
            ("metrics on", "fedsx", {**off, "BENCH_METRICS": "1"}),
            ("metrics off", "fedsx", {**off, "BENCH_METRICS": "0"}),
        ]
    if args.dispatch:
        if not broker:
            sys.exit("--dispatch needs CELERY_BROKER_URL")
        runs.append(
            ("fedsx+dispatch", "fedsx", {"BENCH_DISPATCH": "1", "CELERY_BROKER_URL": broker})
        )
    rounds: dict[str, list[dict]] = {label: [] for label, _, _ in runs}
    for n in range(1, args.rounds + 1):
        print(f"round {n}", flush=True)
        # With --metrics, the two runs alternate which goes first: drift favours neither.
        ordered = runs[::-1] if args.metrics and n % 2 == 0 else runs
        for label, kind, extra in ordered:
            fresh_tables()  # every run appends new activities, as in production
            r = measure(label, port, {**env, **extra}, signed[kind], warmup)
            rounds[label].append(r)
            print(
                f"  {label:15} {r['accepted_per_s']:8.0f} accepted/s   p50 {r['p50_ms']:6.1f} ms"
                f"   p99 {r['p99_ms']:6.1f} ms   ({r['accepted']}/{r['sent']} accepted"
                f"{', other: ' + str(r['other_statuses']) if r['other_statuses'] else ''})"
                f"   /metrics counted {r['counted']:.0f}",
                flush=True,
            )
    # Runs of one round are next to each other in time; this machine's speed drifts between
    # rounds, so each ratio is taken within its round and the median of those is reported.
    if args.metrics:
        for label in ("metrics on", "metrics off"):
            rates = [r["accepted_per_s"] for r in rounds[label]]
            print(f"{label}: median {statistics.median(rates):.0f} accepted/s")
        print_ratio(
            "metrics on / off throughput", rounds["metrics on"], rounds["metrics off"], 0.97
        )
        on, off, bare = instrumentation_cost(env)
        # Two sync workers share the load: each request has about 2 / (accepted/s) of one.
        budget = 2 / statistics.median(r["accepted_per_s"] for r in rounds["metrics off"]) * 1e6
        print(
            f"per accepted request, timed alone: metrics on {on:.2f} µs, off {off:.2f} µs,"
            f" bare call {bare:.2f} µs: on adds {on - bare:.2f} µs ="
            f" {(on - bare) / budget:.2%} of a request's {budget:.0f} µs"
        )
        return
    print_ratio("fedsx / floor throughput", rounds["fedsx"], rounds["floor"], 0.70)
    if "fedsx+dispatch" in rounds:
        print_ratio("dispatch on / off throughput", rounds["fedsx+dispatch"], rounds["fedsx"], 0.80)


def fresh_tables() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE fedsx_inboxentry, fedsx_activity, bench_floor CASCADE")


def print_ratio(name: str, runs: list[dict], baseline: list[dict], target: float) -> None:
    ratios = [
        r["accepted_per_s"] / b["accepted_per_s"] for r, b in zip(runs, baseline, strict=True)
    ]
    shown = ", ".join(f"{ratio:.2f}" for ratio in ratios)
    print(f"{name}: median {statistics.median(ratios):.2f} (rounds: {shown})  target >= {target}")


if __name__ == "__main__":
    main()
