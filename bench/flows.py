"""Flows on Postgres: start-to-done throughput of a three-step flow, and resume latency
for instances whose logs hold 10, 100, 1,000 and 10,000 entries.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/fedsx .venv/bin/python bench/flows.py

Targets: a resume of a 1,000-entry instance under 20 ms, and a cost that grows no worse than
linearly with the log (each 10x longer log costs at most 10x). The baseline, measured in the
same run, is the I/O floor of a resume done by hand: lock the instance row, insert one log
row, update the instance, commit. It uses its own database (test_fedsx_bench_flows), created
with the migrations and dropped at the end.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

from bench.database import own_database  # noqa: E402

SIZES = (10, 100, 1_000, 10_000)
STARTS = 300
BENCH_DB = "test_fedsx_bench_flows"


def median_ms(fn, repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples)


def register_bench_flows() -> None:
    from flows import flow

    @flow("bench-three-steps")
    def three_steps(ctx, input):
        a = ctx.step("fetch", lambda: {"actor": input["actor"], "ok": True})
        b = ctx.step("decide", lambda: {"accept": a["ok"]})
        return ctx.step("answer", lambda: {"sent": b["accept"], "to": a["actor"]})

    @flow("bench-long")
    def long(ctx, input):
        # input["n"] - 1 steps, then one wait per resume, forever: every resume appends
        # one row and suspends again, so the log stays about n entries long.
        for i in range(input["n"] - 1):
            ctx.step("work", lambda i=i: {"i": i, "ok": True})
        while True:
            ctx.wait("tick")


def floor_ms(instance_id: int) -> float:
    """A resume's database work by hand: row lock, one INSERT, one UPDATE, commit."""
    from django.db import transaction

    from flows.models import FlowInstance, FlowLogEntry

    def once():
        with transaction.atomic():
            instance = FlowInstance.objects.select_for_update(nowait=True).get(pk=instance_id)
            FlowLogEntry.objects.bulk_create(
                [FlowLogEntry(instance=instance, seq=instance.log_length, kind="wait", tag="t")]
            )
            instance.log_length += 1
            instance.save(update_fields=["log_length", "updated_at"])

    return median_ms(once, 200)


def main() -> None:
    with own_database(BENCH_DB, "bench/flows.py"):
        from flows import store

        register_bench_flows()
        scratch, _ = store.start("approval", {})
        floor = floor_ms(scratch)

        t0 = time.perf_counter()
        for i in range(STARTS):
            _, outcome = store.start("bench-three-steps", {"actor": f"a{i}"})
            assert outcome.status == "done", outcome
        elapsed = time.perf_counter() - t0
        print(
            f"start-to-done, three-step flow: {STARTS / elapsed:8.0f} flows/s "
            f"({elapsed / STARTS * 1000:.2f} ms each)"
        )
        print(f"baseline (row lock + 1 INSERT + 1 UPDATE + commit): {floor:6.2f} ms")
        print()
        print(
            f"{'log entries':>12} {'resume ms':>10} {'x baseline':>10} {'x previous':>10}"
            f" {'(size x10)':>10}"
        )
        previous = None
        for n in SIZES:
            pk, outcome = store.start("bench-long", {"n": n})
            assert outcome.status == "suspended", outcome

            def resume(pk=pk):
                assert store.resume(pk, {"tick": True}).status == "suspended"

            for _ in range(3):  # warm up: connection, caches
                resume()
            ms = median_ms(resume, 30 if n < 10_000 else 10)
            growth = f"{ms / previous:10.2f}" if previous else f"{'':>10}"
            print(f"{n:>12,} {ms:10.2f} {ms / floor:10.1f} {growth}")
            previous = ms
        print()
        print("targets: 1,000 entries under 20 ms; 'x previous' at most 10 for each 10x size")


if __name__ == "__main__":
    main()
