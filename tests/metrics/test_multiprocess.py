"""Multiprocess mode: processes sharing one PROMETHEUS_MULTIPROC_DIR add up in /metrics,
and the files of ended processes are folded into an archive when a service starts, the
sums unchanged."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fedsx.metrics import processes
from fedsx.server import gunicorn

from .conftest import parse

ROOT = Path(__file__).resolve().parents[2]

# A process of the node: the test settings, the directory from the environment.
RECORD = """
import django, os
os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
django.setup()
from prometheus_client import values
from fedsx import metrics
assert values.ValueClass.__name__ == "MmapedValue", values.ValueClass
for _ in range(int(os.environ["TIMES"])):
    metrics.inbox_accepted()
    metrics.inbox_refused("bad_signature", 401)
metrics.flow_started("approval")
metrics.APPEND_SECONDS.observe(0.003)
"""


def record_in_a_process(directory: Path, times: int) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory), "TIMES": str(times)}
    done = subprocess.run(
        [sys.executable, "-c", RECORD],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.django_db
def test_two_processes_counters_add_up_in_the_scrape(client, tmp_path, monkeypatch):
    record_in_a_process(tmp_path, 3)
    record_in_a_process(tmp_path, 4)
    assert len(list(tmp_path.glob("counter_*.db"))) == 2
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))  # as a served node's
    response = client.get("/metrics")
    assert response.status_code == 200
    families = parse(response.content.decode())
    requests = families["fedsx_inbox_requests"]
    assert requests[("fedsx_inbox_requests_total", (("outcome", "accepted"),))] == 7
    assert requests[("fedsx_inbox_requests_total", (("outcome", "bad_signature"),))] == 7
    failures = families["fedsx_inbox_signature_failures"]
    assert failures[("fedsx_inbox_signature_failures_total", (("reason", "bad_signature"),))] == 7
    starts = families["fedsx_flow_starts"]
    assert starts[("fedsx_flow_starts_total", (("flow", "approval"),))] == 2
    appends = families["fedsx_inbox_append_seconds"]
    assert appends[("fedsx_inbox_append_seconds_count", ())] == 2
    assert appends[("fedsx_inbox_append_seconds_bucket", (("le", "0.005"),))] == 2
    # The gauges come from the database, once, whichever process answers.
    assert families["fedsx_metrics_database_up"][("fedsx_metrics_database_up", ())] == 1


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait(30)
    return child.pid


def scrape_totals(client) -> dict:
    families = parse(client.get("/metrics").content.decode())
    return {
        sample: value
        for name in ("fedsx_inbox_requests", "fedsx_flow_starts", "fedsx_inbox_append_seconds")
        for sample, value in families[name].items()
    }


@pytest.mark.django_db
def test_a_starting_service_archives_ended_processes_without_moving_the_sums(
    client, tmp_path, monkeypatch
):
    record_in_a_process(tmp_path, 3)
    record_in_a_process(tmp_path, 4)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    before = scrape_totals(client)
    (tmp_path / f"gauge_all_{dead_pid()}.db").write_bytes(b"")  # a gone process's gauge
    (tmp_path / f"counter_{dead_pid()}.db").write_bytes(b"")  # made, never written
    (tmp_path / "notes.txt").write_text("not ours")

    gunicorn.on_starting(server=None)  # as gunicorn's master does before forking workers

    assert sorted(p.name for p in tmp_path.iterdir() if p.name != ".archive.lock") == [
        "counter_archive.db",
        "histogram_archive.db",
        "notes.txt",
    ]
    after = scrape_totals(client)
    assert after == before  # a sum that dropped would read as a counter reset
    assert after[("fedsx_inbox_requests_total", (("outcome", "accepted"),))] == 7
    # A later process's counts add to the archive's, and a second archiving keeps the sum.
    record_in_a_process(tmp_path, 2)
    assert processes.archive_dead_files() == 2
    later = scrape_totals(client)
    assert later[("fedsx_inbox_requests_total", (("outcome", "accepted"),))] == 9
    assert later[("fedsx_inbox_append_seconds_count", ())] == 3


def test_the_files_of_running_processes_are_left_alone(tmp_path, monkeypatch):
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    mine = tmp_path / f"counter_{os.getpid()}.db"
    mine.write_bytes(b"")
    assert processes.archive_dead_files() == 0
    assert mine.exists()


def test_without_a_directory_nothing_is_removed(tmp_path, monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    assert processes.directory() is None
    assert processes.archive_dead_files() == 0


def test_gunicorn_marks_an_exiting_worker_dead(tmp_path, monkeypatch):
    """Its live gauges (a host project's, should it add some) leave the sum; its counters
    stay."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    for name in ("gauge_livesum_4242.db", "counter_4242.db", "gauge_livesum_4243.db"):
        (tmp_path / name).write_bytes(b"")

    class Worker:
        pid = 4242

    gunicorn.child_exit(server=None, worker=Worker())
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "counter_4242.db",
        "gauge_livesum_4243.db",
    ]
