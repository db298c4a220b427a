"""The federation dashboard over a large node: each of its queries, and the whole page
rendered through Django's test client, timed over several runs on Postgres.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/fedsx \\
        .venv/bin/python bench/dashboard.py [--activities 1000000] [--rounds 5]

It fills its own database (test_fedsx_bench_dashboard, made with the migrations and
dropped at the end) in bulk with INSERT ... SELECT generate_series: N activities, each in a
local actor's inbox (0.1% of the entries with triggers not applied yet), deliveries for
N/4 of them to 500 hosts in every status, N/5 flow instances in every status, and a week
of hourly inbox tallies. Then it runs VACUUM ANALYZE, as autovacuum would have by then.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

from bench.database import own_database  # noqa: E402

BENCH_DB = "test_fedsx_bench_dashboard"
HOSTS = 500

FILL = [
    (
        "activities",
        """INSERT INTO fedsx_activity (ap_id, activity_cid, type, actor, object_id, payload,
               received_at)
           SELECT 'https://r' || (g %% 1000) || '.example/a/' || g, 'bcid' || g,
                  (ARRAY['Create', 'Like', 'Follow', 'Announce', 'Delete'])[1 + g %% 5],
                  'https://r' || (g %% 1000) || '.example/u/x', '',
                  jsonb_build_object('type', 'Like', 'n', g),
                  now() - (g %% 604800) * interval '1 second'
           FROM generate_series(1, %(n)s) g""",
    ),
    (
        "inbox entries",
        """INSERT INTO fedsx_inboxentry (seq, activity_id, actor_id, created_at,
               triggers_applied_at)
           SELECT a.id, a.id, %(actor)s, a.received_at,
                  CASE WHEN a.id %% 1000 = 0 THEN NULL ELSE a.received_at END
           FROM fedsx_activity a""",
    ),
    (
        "hosts",
        """INSERT INTO fedsx_host (host, state, signature_scheme, consecutive_failures,
               failing_days, last_error, updated_at)
           SELECT 'h' || g || '.example',
                  CASE WHEN g %% 50 = 0 THEN 'unavailable' WHEN g %% 10 = 0 THEN 'open'
                       ELSE 'ok' END,
                  '', CASE WHEN g %% 10 = 0 THEN g %% 40 ELSE g %% 3 END,
                  CASE WHEN g %% 50 = 0 THEN 8 ELSE 0 END, 'HTTP 503', now()
           FROM generate_series(1, %(hosts)s) g""",
    ),
    (
        "deliveries",
        """INSERT INTO fedsx_delivery (activity_id, sender_id, inbox_url, host, subject,
               status, attempts, next_attempt_at, last_error, created_at, updated_at)
           SELECT a.id, %(actor)s, 'https://h' || a.h || '.example/inbox', 'h' || a.h || '.example',
                  '', CASE WHEN a.p < 85 THEN 'delivered' WHEN a.p < 90 THEN 'pending'
                           WHEN a.p < 93 THEN 'held' WHEN a.p < 97 THEN 'failed'
                           WHEN a.p < 99 THEN 'expired' ELSE 'cancelled' END,
                  1, a.received_at, '', a.received_at, a.received_at
           FROM (SELECT id, received_at, (id / 4) %% 100 AS p, (id / 4) %% %(hosts)s + 1 AS h
                 FROM fedsx_activity WHERE id %% 4 = 0) a""",
    ),
    (
        "flow instances",
        """INSERT INTO flows_flowinstance (flow_name, code_hash, input, status, waiting_tag,
               waiting_kind, match_key, lookback_due, error, log_length, created_at, updated_at)
           SELECT 'approval', 'x', '{}'::jsonb,
                  CASE WHEN g %% 100 < 80 THEN 'done' WHEN g %% 100 < 95 THEN 'suspended'
                       WHEN g %% 100 < 98 THEN 'crashed' ELSE 'cancelled' END,
                  '',
                  CASE WHEN g %% 100 BETWEEN 80 AND 94
                       THEN (ARRAY['operator', 'activity', 'timer'])[1 + g %% 3] ELSE '' END,
                  '', false, '', 3, now(), now()
           FROM generate_series(1, %(n)s / 5) g""",
    ),
    (
        "inbox tallies",
        """INSERT INTO fedsx_inboxtally (hour, outcome, count)
           SELECT date_trunc('hour', now()) - h * interval '1 hour', o, 100 + (h * 7) %% 50
           FROM generate_series(0, 167) h,
                unnest(ARRAY['accepted', 'bad_signature', 'date_out_of_window',
                             'key_unavailable', 'domain_blocked', 'too_large']) o""",
    ),
]


def timed(fn, rounds: int) -> tuple[float, float]:
    samples = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples), max(samples)


def fill(n: int) -> None:
    from django.db import connection

    from fedsx.actors import create_local_actor

    actor = create_local_actor("demo")
    params = {"n": n, "actor": actor.pk, "hosts": HOSTS}
    with connection.cursor() as cursor:
        for what, sql in FILL:
            t0 = time.perf_counter()
            cursor.execute(sql, params)
            print(f"  {what:<15} {cursor.rowcount:>10,} rows  {time.perf_counter() - t0:6.1f} s")
        t0 = time.perf_counter()
        cursor.execute("VACUUM ANALYZE")
        print(f"  {'vacuum analyze':<15} {'':>10}       {time.perf_counter() - t0:6.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--activities", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with own_database(BENCH_DB, "bench/dashboard.py"):
        from django.contrib.auth.models import User
        from django.db import connection
        from django.test import Client

        from fedsx.dashboard import figures

        print(f"filling {BENCH_DB} with {args.activities:,} activities:")
        fill(args.activities)
        connection.close()  # a fresh session: no plans or caches from the fill
        print(f"\n{'query':<28} {'median ms':>10} {'max ms':>8}   ({args.rounds} runs)")
        parts = {
            "inbox, 24 h by outcome": figures.inbox,
            "deliveries, now and 24 h": figures.deliveries,
            "hosts failing most": figures.failing_hosts,
            "instances by status": figures.instances_by_status,
            "instances waiting": figures.instances_waiting,
            "unapplied entries": figures.unapplied,
        }
        total = 0.0
        for label, fn in parts.items():
            fn()  # warm: connection, plans
            median, worst = timed(fn, args.rounds)
            total += median
            print(f"{label:<28} {median:10.1f} {worst:8.1f}")
        print(f"{'all queries':<28} {total:10.1f}")

        User.objects.create_superuser("bench", password="bench")
        client = Client()
        client.force_login(User.objects.get(username="bench"))

        def page() -> None:
            response = client.get("/admin/fedsx/dashboard/")
            assert response.status_code == 200, response.status_code

        page()
        queries = []
        with connection.execute_wrapper(lambda execute, *a: queries.append(1) or execute(*a)):
            page()
        median, worst = timed(page, args.rounds)
        print(
            f"{'whole page (test client)':<28} {median:10.1f} {worst:8.1f}   "
            f"({len(queries)} queries)"
        )


if __name__ == "__main__":
    main()
