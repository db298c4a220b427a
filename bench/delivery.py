"""Delivery benchmarks: fan-out to many hosts, the steady rate against a floor, and the
latency of one delivery on an idle node. Receivers are loopback servers in a process of
their own that answer 202 at once (keep-alive HTTP/1.1); each "host" is a port of its own
on 127.0.0.1 (``127.0.0.1:<port>`` is a distinct host to fedsx: its Host row, its breaker,
its per-host cap and its pooled connections), so one allowlist entry lets them all in.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/delivery.py [--rounds 3] [--followers 10000] [--hosts 1000]

(a) fan-out: one Create to ``--followers`` followers spread over ``--hosts`` hosts, each
    with a shared inbox (so one Delivery per host), posted with ``fedsx.outbox.post`` from
    this process and delivered by a real Celery worker (``celery -A fedsx.server.celery
    worker``, prefork, Redis of its own). Timed from the post's commit to the last
    Delivery's ``delivered_at``; deliveries/s over that time.
(b) steady rate: ``deliver(ids)`` (claim, sign, POST, record) on ``--steady`` pending
    deliveries to personal inboxes on ``--steady-hosts`` hosts, run in this process in
    DELIVERY_BATCH chunks as a worker runs its tasks, against a *floor* measured in the
    same round: RSA-2048 signing (cavage: digest, date, one PKCS#1 v1.5 signature) and one
    pooled httpx POST per delivery, from as many threads as DELIVERY_CONCURRENCY, no
    database. The floor pools as fedsx does, the best way we know to do the network part:
    one small httpx pool per host (DELIVERY_HOST_CONCURRENCY + client.HOST_POOL_EXTRA
    connections), all sharing one SSL context, but with httpcore's own network backend
    (no SSRF guard: that is fedsx's work) and no LRU bound (50 hosts). (It used one shared
    httpx client of 200/100 connections until fedsx moved to per-host pools; with httpcore
    1.0.9 a big shared pool is itself slow, see the last paragraph.) Target: fedsx >= 60%
    of the floor.
(c) latency: post → delivered for one follower on an idle node (the same worker), one post
    at a time with a pause between: p50 under 50 ms.

It uses its own database, fedsx_bench_delivery, which it drops and recreates, and its own
Redis on a free loopback port. ``--parts ab`` runs only some parts; ``--profile`` profiles
every thread of one extra (b) fedsx run (cProfile on each thread's CPU clock; it runs ~5x
slower profiled) and prints where the CPU goes, per delivery.

Measured here (2 cores, other sessions' test runs on the same cores at times): RSA-2048
signing holds the GIL (~1 ms, 16 threads sign no faster than one), and httpcore 1.0.9's
pool scans its connections twice per request with an inner scan (quadratic in pooled
connections, under the pool's lock; encode/httpcore#1035): with one pool for 1,000 hosts
that, not signing, bounded (a); fedsx now keeps a small pool per host. With ``--rounds 3``
(load 0.1-3.2): one run with one shared pool and a write per answer, (a)
72-97/s, (b) fedsx 119-145/s against that floor's 221-262/s (ratio 0.45-0.66), (c) p50
21.5 ms; two runs with per-host pools and grouped writes, (a) 235-482/s, (b) fedsx 301-433/s
against the per-host floor's 396-524/s (0.67-0.82), (c) p50 18-19 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import multiprocessing
import os
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BENCH_DB = "fedsx_bench_delivery"
BASE_URL = "http://bench-sender.invalid"  # the local actors' origin; nothing fetches it
ACCEPTED = b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n"


# ── the receivers (a spawned process: no Django, no GIL shared with the sender) ────────


class _Inbox(asyncio.Protocol):
    """Reads HTTP/1.1 requests (Content-Length bodies) and answers each 202, keep-alive."""

    received = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.buffer = bytearray()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end]).lower()
            length = 0
            at = head.find(b"\r\ncontent-length:")
            if at >= 0:
                stop = head.find(b"\r\n", at + 2)
                length = int(head[at + 17 : stop if stop >= 0 else None])
            total = end + 4 + length
            if len(self.buffer) < total:
                return
            del self.buffer[:total]
            _Inbox.received += 1
            self.transport.write(ACCEPTED)


def receiver_main(conn: Any, count: int) -> None:
    """Listen on ``count`` loopback ports, send their numbers, answer 'count' and 'stop'."""

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        servers = [
            await loop.create_server(_Inbox, "127.0.0.1", 0, backlog=1024) for _ in range(count)
        ]
        conn.send([server.sockets[0].getsockname()[1] for server in servers])
        stopped = asyncio.Event()

        def command() -> None:
            what = conn.recv()
            if what == "count":
                conn.send(_Inbox.received)
            else:
                stopped.set()

        loop.add_reader(conn.fileno(), command)
        await stopped.wait()
        for server in servers:
            server.close()

    asyncio.run(serve())


class Receivers:
    """The receiver process; ``with Receivers(n) as r: r.ports, r.received()``."""

    def __init__(self, count: int):
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(target=receiver_main, args=(child, count), daemon=True)
        self.count = count

    def __enter__(self) -> Receivers:
        self.process.start()
        if not self.conn.poll(60):
            raise RuntimeError("the receivers did not start")
        self.ports: list[int] = self.conn.recv()
        return self

    def received(self) -> int:
        self.conn.send("count")
        return self.conn.recv()

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(OSError):  # the process is gone already
            self.conn.send("stop")
        self.process.join(10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)


# ── the database and Django ────────────────────────────────────────────────────────────


def bench_database_url() -> str:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        sys.exit(f"bench/delivery.py needs DATABASE_URL=postgres://... (it creates {BENCH_DB})")
    return urlunsplit(urlsplit(url)._replace(path=f"/{BENCH_DB}"))


def recreate_database(url: str) -> None:
    import psycopg

    admin = urlunsplit(urlsplit(url)._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {BENCH_DB}")


def setup_django(env: dict[str, str]) -> None:
    os.environ.update(env)
    import django

    django.setup()


def remote_actors(
    ports: list[int], count: int, *, shared: bool, path: str
) -> list[Any]:  # list[Actor]
    """``count`` remote actors, actor n on host ``ports[n % len(ports)]`` (hosts interleaved,
    as a fan-out's inboxes come in no host order)."""
    from fedsx.models import Actor

    rows = []
    for n in range(count):
        origin = f"http://127.0.0.1:{ports[n % len(ports)]}"
        ap_id = f"{origin}/{path}/u{n}"
        rows.append(
            Actor(
                ap_id=ap_id,
                username=f"u{n}",
                domain=origin.removeprefix("http://"),
                inbox_url=f"{ap_id}/inbox",
                shared_inbox_url=f"{origin}/inbox" if shared else "",
            )
        )
    return Actor.objects.bulk_create(rows, batch_size=2000)


def followed_by(local: Any, followers: list[Any]) -> None:
    from fedsx.models import Follow

    Follow.objects.bulk_create(
        [Follow(follower=f, following=local, state=Follow.State.ACCEPTED) for f in followers],
        batch_size=2000,
    )


def note_to_followers(local: Any, n: int) -> dict[str, Any]:
    return {
        "type": "Note",
        "to": ["https://www.w3.org/ns/activitystreams#Public"],
        "cc": [local.followers_url],
        "content": f"<p>benchmark {n} " + "federated words " * 30 + "</p>",
    }


def wait_settled(activity: Any, expected: int, timeout: float) -> dict[str, Any]:
    """Poll (every 100 ms: the figures come from delivered_at, not from the poll) until no
    Delivery of ``activity`` is pending; its counts and its last delivered_at."""
    from django.db.models import Count, Max

    from fedsx.models import Delivery

    deadline = time.monotonic() + timeout
    while True:
        pending = Delivery.objects.filter(activity=activity, status=Delivery.Status.PENDING).count()
        if pending == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    rows = Delivery.objects.filter(activity=activity)
    by_status = dict(rows.values_list("status").annotate(n=Count("id")).order_by())
    last = rows.filter(status=Delivery.Status.DELIVERED).aggregate(at=Max("delivered_at"))["at"]
    return {
        "total": sum(by_status.values()),
        "expected": expected,
        "by_status": by_status,
        "last_delivered": last.timestamp() if last else None,
    }


# ── (a) fan-out ────────────────────────────────────────────────────────────────────────


def fan_out(sender: Any, n: int, hosts: int) -> dict[str, Any]:
    from fedsx.outbox import post

    started = time.perf_counter()
    activity = post(sender, note_to_followers(sender, n))
    # post() commits its own transaction (we are in none); its on_commit hand-off to the
    # courier has run when it returns, so this is the commit time, give or take microseconds.
    committed = time.time()
    post_s = time.perf_counter() - started
    settled = wait_settled(activity, hosts, timeout=60 + hosts / 20)
    delivered = settled["by_status"].get("delivered", 0)
    elapsed = (settled["last_delivered"] or committed) - committed
    return {
        **settled,
        "post_ms": post_s * 1000,
        "seconds": elapsed,
        "per_s": delivered / elapsed if elapsed > 0 else 0.0,
        "delivered": delivered,
    }


# ── (b) steady rate: fedsx's deliver() against the floor ───────────────────────────────


def pending_deliveries(sender: Any, recipients: list[Any], n: int) -> list[int]:
    """``len(recipients)`` pending deliveries of a new Note, one per personal inbox, made as
    outbox._create_deliveries makes them but handed to nobody (deliver() is called here)."""
    from fedsx.models import Delivery, host_of
    from fedsx.outbox import post

    activity = post(sender, {"type": "Note", "content": f"<p>steady {n} " + "words " * 80})
    rows = Delivery.objects.bulk_create(
        [
            Delivery(
                activity=activity,
                sender=sender,
                inbox_url=r.inbox_url,
                host=host_of(r.inbox_url),
                recipient=r,
                subject=activity.object_id,
            )
            for r in recipients
        ],
        batch_size=1000,
    )
    return [row.pk for row in rows]


def delivered_body(delivery_id: int) -> bytes:
    import orjson

    from fedsx.models import Delivery

    return orjson.dumps(Delivery.objects.get(pk=delivery_id).activity.payload)


def run_fedsx(ids: list[int]) -> dict[str, Any]:
    from django.db.models import Count

    from fedsx import client
    from fedsx.conf import fedsx_settings
    from fedsx.delivery import deliver
    from fedsx.models import Delivery

    client.reset()  # a fresh pool, as the floor's: both pay the same connects
    batch = fedsx_settings.DELIVERY_BATCH
    started = time.perf_counter()
    for at in range(0, len(ids), batch):
        deliver(ids[at : at + batch])
    elapsed = time.perf_counter() - started
    by_status = dict(
        Delivery.objects.filter(pk__in=ids).values_list("status").annotate(n=Count("id")).order_by()
    )
    delivered = by_status.get("delivered", 0)
    other = {k: v for k, v in by_status.items() if k != "delivered"}
    return {
        "per_s": delivered / elapsed,
        "seconds": elapsed,
        "ok": delivered,
        "of": len(ids),
        "other": other,
    }


def run_floor(urls: list[str], body: bytes, private_pem: str, key_id: str) -> dict[str, Any]:
    """The least a delivery can do: digest, date, one RSA-2048 signature over the cavage
    signing string, one POST on a pooled connection, read the status. No database."""
    import base64
    import hashlib
    from email.utils import formatdate

    import httpx
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding

    from fedsx import client
    from fedsx.conf import fedsx_settings

    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    digest = "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode()
    # A pool per host, as fedsx's client keeps (see the docstring), sharing one SSL context.
    size = fedsx_settings.DELIVERY_HOST_CONCURRENCY + client.HOST_POOL_EXTRA
    limits = httpx.Limits(max_connections=size, max_keepalive_connections=size)
    ssl_context = httpx.create_ssl_context(trust_env=False)
    per_host: dict[str, httpx.Client] = {}
    made = threading.Lock()

    def http_for(origin: str) -> httpx.Client:
        http = per_host.get(origin)
        if http is None:
            with made:
                http = per_host.get(origin)
                if http is None:
                    http = per_host[origin] = httpx.Client(
                        limits=limits, verify=ssl_context, trust_env=False, follow_redirects=False
                    )
        return http

    def one(url: str) -> int:
        parts = urlsplit(url)
        date = formatdate(usegmt=True)
        text = (
            f"(request-target): post {parts.path}\nhost: {parts.netloc}\ndate: {date}\n"
            f"digest: {digest}"
        )
        signature = base64.b64encode(
            key.sign(text.encode(), padding.PKCS1v15(), hashes.SHA256())
        ).decode()
        headers = {
            "Content-Type": "application/activity+json",
            "Date": date,
            "Digest": digest,
            "Signature": f'keyId="{key_id}",algorithm="rsa-sha256",'
            f'headers="(request-target) host date digest",signature="{signature}"',
        }
        http = http_for(parts.netloc)
        return http.post(url, content=body, headers=headers, timeout=10).status_code

    try:
        started = time.perf_counter()
        with ThreadPoolExecutor(fedsx_settings.DELIVERY_CONCURRENCY) as pool:
            statuses = list(pool.map(one, urls))
        elapsed = time.perf_counter() - started
    finally:
        for http in per_host.values():
            http.close()
    ok = statuses.count(202)
    return {"per_s": ok / elapsed, "seconds": elapsed, "ok": ok, "of": len(urls), "other": {}}


class ThreadProfiles:
    """cProfile in every thread started while it is on, timed by each thread's CPU clock
    (cProfile alone sees only the thread that enabled it, and deliver() sends from a pool;
    a wall clock would count the time threads wait for the GIL or the pool lock)."""

    def __enter__(self) -> ThreadProfiles:
        self.lock = threading.Lock()
        self.threads: list[cProfile.Profile] = []
        self.main = cProfile.Profile(time.thread_time)

        def start(frame: Any, event: str, arg: Any) -> None:
            profile = cProfile.Profile(time.thread_time)
            with self.lock:
                self.threads.append(profile)
            profile.enable()  # replaces this hook, for this thread only

        threading.setprofile(start)
        self.main.enable()
        return self

    def __exit__(self, *exc: object) -> None:
        self.main.disable()  # first: disabling any profile stops the calling thread's
        threading.setprofile(None)

    def report(self, deliveries: int, top: int = 22) -> None:
        import pstats

        groups = (("calling thread (claim, checks, record)", [self.main]),
                  ("pool threads (sign, POST)", self.threads))  # fmt: skip
        for title, profiles in groups:
            stats = pstats.Stats(*profiles)
            print(
                f"  {title}: {stats.total_tt * 1000 / deliveries:.2f} ms CPU per delivery "
                f"({len(profiles)} profiled threads); top {top} by own time:"
            )
            listing = []
            for (path, line, name), (_, _, own, total, _) in stats.stats.items():
                for marker in ("site-packages/", "/work/main/", "python3.11/"):
                    path = path.split(marker, 1)[-1]
                listing.append((own, total, f"{path}:{line} {name}"))
            for own, total, where in sorted(listing, reverse=True)[:top]:
                print(
                    f"    own {own * 1000 / deliveries:6.3f}  with callees "
                    f"{total * 1000 / deliveries:6.3f} ms/delivery  {where}"
                )


# ── (c) latency on an idle node ────────────────────────────────────────────────────────


def one_delivery(sender: Any, n: int) -> float | None:
    """Post to ``sender``'s one follower; ms from the post's commit to delivered_at."""
    from fedsx.models import Delivery
    from fedsx.outbox import post

    activity = post(sender, note_to_followers(sender, n))
    committed = time.time()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        # Every 5 ms: light enough for an idle node; the figure comes from delivered_at.
        row = Delivery.objects.filter(activity=activity).values("status", "delivered_at").first()
        if row and row["status"] != Delivery.Status.PENDING:
            at = row["delivered_at"]
            return (at.timestamp() - committed) * 1000 if at else None
        time.sleep(0.005)
    return None


# ── running it ─────────────────────────────────────────────────────────────────────────


def start_worker(env: dict[str, str], logs: Path, pool: str, concurrency: int) -> Any:
    from tests.e2e.services import Worker

    worker = Worker(
        {**os.environ, **env},
        logs,
        concurrency=concurrency,
        app="fedsx.server.celery",
        pool=pool,
        loglevel="WARNING",  # a log line per task is CPU the measurement would pay for
    )
    worker.start()
    return worker


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds of (a) and (b)")
    parser.add_argument("--followers", type=int, default=10000, help="(a) followers")
    parser.add_argument("--hosts", type=int, default=1000, help="(a) hosts (shared inboxes)")
    parser.add_argument("--steady", type=int, default=1000, help="(b) deliveries per run")
    parser.add_argument("--steady-hosts", type=int, default=50, help="(b) hosts")
    parser.add_argument("--latency-posts", type=int, default=50, help="(c) posts, one at a time")
    parser.add_argument("--parts", default="abc", help="which parts to run: any of a, b, c")
    parser.add_argument("--worker-pool", default="prefork", help="(a)(c) the worker's pool")
    parser.add_argument("--worker-concurrency", type=int, default=2, help="(a)(c) its processes")
    parser.add_argument("--profile", action="store_true", help="(b) where fedsx's time goes")
    args = parser.parse_args()
    parts = set(args.parts)
    if args.hosts > args.followers or args.steady_hosts > args.steady:
        sys.exit("there must be at least one follower (or delivery) per host")

    url = bench_database_url()
    recreate_database(url)
    logs = Path(tempfile.mkdtemp(prefix="bench-delivery-"))
    redis = worker = None
    try:
        from tests.e2e.services import RedisServer

        env = {
            "DATABASE_URL": url,
            "DJANGO_SETTINGS_MODULE": "bench.settings",
            "SECRET_KEY": "bench-only",
            "FEDSX_BASE_URL": BASE_URL,
            "FEDSX_DATA_DIR": str(ROOT / "data" / "bench"),
            # Every receiver is 127.0.0.1:<port>; the SSRF guard refuses loopback otherwise.
            "FEDSX_FETCH_ALLOWLIST": "127.0.0.1",
            "FEDSX_LOG_LEVEL": "WARNING",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
            "CELERY_BROKER_URL": "",
        }
        if parts & {"a", "c"}:
            redis = RedisServer(logs)
            redis.start()
            env["CELERY_BROKER_URL"] = redis.url  # the settings read it at import: set first
        setup_django(env)
        from django.core.management import call_command

        from fedsx.actors import create_local_actor

        call_command("migrate", verbosity=0)
        ports_needed = max(args.hosts if "a" in parts else 1, args.steady_hosts)
        with Receivers(ports_needed) as receivers:
            ports = receivers.ports
            print(f"{ports_needed} receiver ports; setting up ...", flush=True)
            fan = create_local_actor("fan")
            if "a" in parts:
                fans = remote_actors(ports[: args.hosts], args.followers, shared=True, path="users")
                followed_by(fan, fans)
            steady = create_local_actor("steady")
            steady_to = remote_actors(
                ports[: args.steady_hosts], args.steady, shared=False, path="people"
            )
            solo = create_local_actor("solo")
            followed_by(solo, remote_actors(ports[:1], 1, shared=False, path="solo"))
            if parts & {"a", "c"}:
                worker = start_worker(env, logs, args.worker_pool, args.worker_concurrency)
                # A first delivery, unmeasured: the worker's children connect to the
                # database and import what a delivery needs.
                for n in range(args.worker_concurrency * 2):
                    one_delivery(solo, -1 - n)
            urls = [r.inbox_url for r in steady_to]
            body = b""
            if "b" in parts:
                # Warm-up, unmeasured, on both sides: Host rows, the key cache, imports.
                warm = pending_deliveries(steady, steady_to[: args.steady_hosts * 2], 0)
                run_fedsx(warm)
                body = delivered_body(warm[0])  # the floor POSTs the same bytes
                run_floor(urls[: len(warm)], body, steady.private_key_pem, steady.key_id)

            rounds: dict[str, list[dict]] = {"a": [], "fedsx": [], "floor": []}
            for n in range(1, args.rounds + 1):
                print(f"round {n}", flush=True)
                if "a" in parts:
                    before = receivers.received()
                    r = fan_out(fan, n, args.hosts)
                    r["received"] = receivers.received() - before
                    rounds["a"].append(r)
                    others = {k: v for k, v in r["by_status"].items() if k != "delivered"}
                    print(
                        f"  (a) fan-out     {r['per_s']:8.0f} deliveries/s   "
                        f"commit → all delivered {r['seconds']:6.2f} s   "
                        f"post() {r['post_ms']:6.0f} ms"
                        f"   ({r['delivered']}/{r['expected']} delivered, {r['received']} received"
                        f"{', other: ' + str(others) if others else ''})",
                        flush=True,
                    )
                if "b" in parts:
                    ids = pending_deliveries(steady, steady_to, n)
                    for label in ("fedsx", "floor"):
                        if label == "fedsx":
                            r = run_fedsx(ids)
                        else:
                            r = run_floor(urls, body, steady.private_key_pem, steady.key_id)
                        rounds[label].append(r)
                        print(
                            f"  (b) {label:11} {r['per_s']:8.0f} deliveries/s   "
                            f"{r['seconds']:6.2f} s   ({r['ok']}/{r['of']} delivered"
                            f"{', other: ' + str(r['other']) if r['other'] else ''})",
                            flush=True,
                        )
            if args.profile and "b" in parts:
                print("profile of one more (b) fedsx run:", flush=True)
                ids = pending_deliveries(steady, steady_to, args.rounds + 1)
                with ThreadProfiles() as profiles:
                    r = run_fedsx(ids)
                print(f"  (b) fedsx (profiled) {r['per_s']:8.0f} deliveries/s")
                profiles.report(len(ids))

            latencies: list[float] = []
            if "c" in parts:
                print(f"(c) {args.latency_posts} posts to one follower, one at a time", flush=True)
                for n in range(args.latency_posts):
                    time.sleep(0.2)  # idle between posts: nothing queued, nothing in flight
                    ms = one_delivery(solo, n)
                    if ms is not None:
                        latencies.append(ms)

        print(f"summary (load average at the end: {os.getloadavg()[0]:.2f})")
        if rounds["a"]:
            a = rounds["a"]
            print(
                f"(a) one Create to {args.followers} followers on {args.hosts} hosts (shared "
                f"inboxes), Celery worker {args.worker_pool} x{args.worker_concurrency}: "
                f"median {statistics.median(r['per_s'] for r in a):.0f} deliveries/s, "
                f"commit → all delivered median {statistics.median(r['seconds'] for r in a):.2f} s"
                f", post() median {statistics.median(r['post_ms'] for r in a):.0f} ms"
            )
        if rounds["fedsx"]:
            print(
                f"(b) {args.steady} deliveries to {args.steady_hosts} hosts: fedsx median "
                f"{statistics.median(r['per_s'] for r in rounds['fedsx']):.0f}/s, floor median "
                f"{statistics.median(r['per_s'] for r in rounds['floor']):.0f}/s"
            )
            print_ratio("(b) fedsx / floor deliveries/s", rounds["fedsx"], rounds["floor"], 0.60)
        if "c" in parts:
            if latencies:
                latencies.sort()
                p90 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.9))]
                print(
                    f"(c) post commit → delivered, one follower, idle node: p50 "
                    f"{statistics.median(latencies):.1f} ms (target < 50), p90 {p90:.1f} ms, "
                    f"max {latencies[-1]:.1f} ms ({len(latencies)}/{args.latency_posts} delivered)"
                )
            else:
                print("(c) nothing was delivered")
    finally:
        if worker is not None:
            worker.stop()
        if redis is not None:
            redis.stop()


def print_ratio(name: str, runs: list[dict], baseline: list[dict], target: float) -> None:
    # Runs of one round are next to each other in time, and this machine's speed drifts
    # between rounds: each ratio is taken within its round, the median of those reported.
    ratios = [r["per_s"] / b["per_s"] for r, b in zip(runs, baseline, strict=True)]
    shown = ", ".join(f"{ratio:.2f}" for ratio in ratios)
    print(f"{name}: median {statistics.median(ratios):.2f} (rounds: {shown})  target >= {target}")


if __name__ == "__main__":
    main()
