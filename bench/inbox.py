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
post-commit trigger dispatch switched on, against the same inbox with it off.

With --metrics it measures the inbox with its metrics on (FEDSX METRICS, written to a
multiprocess directory as a served node does) against the same inbox with them off: one
server, whose switch follows a flag file (bench/settings.py), so that each round sends a
block of --requests with metrics on and one with them off, in alternating order, to the
same two workers. Each block's throughput and its workers' CPU time per request are
compared within the round; /metrics must have counted exactly the blocks sent with metrics
on. It then times what metrics add to one request alone.

It uses its own database (BENCH_DB, default fedsx_bench), which it drops and recreates.
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


def prepare(
    port: int, count: int, kinds: tuple[str, ...] = ("floor", "fedsx")
) -> dict[str, list[tuple[str, dict, bytes]]]:
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
        if name in kinds
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


def serve(name: str, port: int, env: dict, log_dir: Path | None = None):
    from tests.e2e.services import Node

    node = Node(
        {**os.environ, **env},
        log_dir or Path(tempfile.mkdtemp(prefix=f"bench-inbox-{name}-")),
        port,
        workers=2,
        threads=int(os.environ.get("BENCH_WEB_THREADS", "1")),
    )
    node.start()
    return node


def measure(name: str, port: int, env: dict, requests: list, warmup: int) -> dict:
    node = serve(name, port, env)
    try:
        run_load(port, requests[:warmup])  # warms connections and the key caches
        return run_load(port, requests[warmup:])
    finally:
        node.stop()


# ── --metrics ──────────────────────────────────────────────────────────────────────────


def compare_metrics(port: int, env: dict, rounds: int, block: int, warmup: int) -> None:
    print(f"signing {warmup + 2 * rounds * block} requests ...", flush=True)
    requests = prepare(port, warmup + 2 * rounds * block, kinds=("fedsx",))["fedsx"]
    fresh_tables()
    log_dir = Path(tempfile.mkdtemp(prefix="bench-inbox-metrics-"))
    (log_dir / "metrics").mkdir()  # fresh, as gunicorn's start hook leaves it
    flag = log_dir / "metrics-on"
    env = {
        **env,
        "BENCH_DISPATCH": "0",
        "CELERY_BROKER_URL": "",
        "PROMETHEUS_MULTIPROC_DIR": str(log_dir / "metrics"),
        "BENCH_METRICS_FLAG": str(flag),
    }
    node = serve("metrics", port, env, log_dir)
    try:
        flag.touch()
        run_load(port, requests[:warmup])  # counted: metrics are on
        expected, sent = warmup, warmup
        results: dict[bool, list[dict]] = {True: [], False: []}
        for n in range(rounds):
            print(f"round {n + 1}", flush=True)
            for on in (True, False) if n % 2 == 0 else (False, True):
                if on:
                    flag.touch()
                else:
                    flag.unlink(missing_ok=True)
                cpu = workers_cpu_seconds(node.proc.pid)
                r = run_load(port, requests[sent : sent + block])
                r["cpu_us"] = (workers_cpu_seconds(node.proc.pid) - cpu) * 1e6 / r["accepted"]
                sent += block
                expected += r["accepted"] if on else 0
                results[on].append(r)
                print(
                    f"  metrics {'on ' if on else 'off'} {r['accepted_per_s']:8.0f} accepted/s"
                    f"   p50 {r['p50_ms']:6.1f} ms   p99 {r['p99_ms']:6.1f} ms"
                    f"   workers' CPU {r['cpu_us']:5.0f} µs/request"
                    f"   ({r['accepted']}/{r['sent']} accepted)",
                    flush=True,
                )
        counted = counted_accepted(port)
    finally:
        node.stop()
    print(f"/metrics counted {counted:.0f} accepted requests; sent with metrics on: {expected}")
    on, off = results[True], results[False]
    for label, runs in (("metrics on", on), ("metrics off", off)):
        rates = statistics.median(r["accepted_per_s"] for r in runs)
        cpu = statistics.median(r["cpu_us"] for r in runs)
        print(f"{label}: median {rates:.0f} accepted/s, workers' CPU {cpu:.0f} µs/request")
    print_ratio("metrics on / off throughput", on, off, 0.97)
    ratios = [b["cpu_us"] / a["cpu_us"] for a, b in zip(on, off, strict=True)]
    shown = ", ".join(f"{ratio:.3f}" for ratio in ratios)
    print(
        f"metrics off / on workers' CPU per request: median {statistics.median(ratios):.3f}"
        f" (rounds: {shown})  target >= 0.97"
    )
    with_metrics, switched_off, bare = instrumentation_cost(env)
    budget = statistics.median(r["cpu_us"] for r in off)
    print(
        f"timed alone, per accepted request: metrics on {with_metrics:.2f} µs, off"
        f" {switched_off:.2f} µs, bare call {bare:.2f} µs: on adds {with_metrics - bare:.2f} µs"
        f" = {(with_metrics - bare) / budget:.2%} of a request's {budget:.0f} µs of CPU"
    )
    if counted != expected:
        sys.exit(f"/metrics counted {counted:.0f}, not {expected}")


def workers_cpu_seconds(master: int) -> float:
    """CPU time (user + system) gunicorn's workers have used."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in Path(f"/proc/{master}/task/{master}/children").read_text().split():
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime and stime (stat fields 14, 15)
    return total / ticks


def counted_accepted(port: int) -> float:
    """fedsx_inbox_requests_total{outcome="accepted"}, as /metrics says."""
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


# What metrics add to one accepted request, timed alone in a process writing to a fresh
# multiprocess directory: the inbox's counter and the append's timing wrapper, on, off
# (FEDSX METRICS False) and absent (the bare call).
PER_REQUEST = """
import time, django
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

    env = {key: value for key, value in env.items() if key != "BENCH_METRICS_FLAG"}
    env["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="bench-inbox-metrics-alone-")
    done = subprocess.run(
        [sys.executable, "-c", PER_REQUEST],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    on, off, bare = (float(x) for x in done.stdout.split())
    return on, off, bare


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
        help="compare the inbox with its metrics on and off (instead of the floor)",
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
    if args.metrics:
        compare_metrics(port, env, args.rounds, args.requests, warmup)
        return
    print(f"signing {2 * (args.requests + warmup)} requests ...", flush=True)
    signed = prepare(port, args.requests + warmup)
    broker = os.environ.get("CELERY_BROKER_URL", "")
    runs = [
        ("floor", "floor", {}),
        ("fedsx", "fedsx", {"BENCH_DISPATCH": "0", "CELERY_BROKER_URL": ""}),
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
        for label, kind, extra in runs:
            fresh_tables()  # every run appends new activities, as in production
            r = measure(label, port, {**env, **extra}, signed[kind], warmup)
            rounds[label].append(r)
            print(
                f"  {label:15} {r['accepted_per_s']:8.0f} accepted/s   p50 {r['p50_ms']:6.1f} ms"
                f"   p99 {r['p99_ms']:6.1f} ms   ({r['accepted']}/{r['sent']} accepted"
                f"{', other: ' + str(r['other_statuses']) if r['other_statuses'] else ''})",
                flush=True,
            )
    # Runs of one round are next to each other in time; this machine's speed drifts between
    # rounds, so each ratio is taken within its round and the median of those is reported.
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
