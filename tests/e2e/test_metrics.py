"""Metrics end to end: gunicorn's workers and a Celery worker write one multiprocess
directory, and one scrape of /metrics adds them up."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from triggers.models import Firing

from ..triggers.conftest import add_trigger
from .services import wait_until

pytestmark = pytest.mark.e2e


def scrape(node) -> dict[tuple[str, tuple], float]:
    response = httpx.get(f"{node.base_url}/metrics", timeout=10)
    assert response.status_code == 200, response.text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def test_gunicorn_and_celery_workers_add_up_in_one_scrape(node, worker, sender, log_dir):
    add_trigger(label="approve follows")
    inbox = f"{node.base_url}/actors/demo/inbox"
    for _ in range(3):  # answered by either of gunicorn's two workers
        response = sender.post(inbox, sender.follow(f"{node.base_url}/actors/demo"))
        assert response.status_code == 202, response.text
    wait_until(lambda: Firing.objects.count() == 3, 30, "three firings in the worker")

    samples = wait_until(
        lambda: (
            (found := scrape(node))
            and found.get(("fedsx_flow_starts_total", (("flow", "approval"),))) == 3
            and found
        ),
        10,
        "the worker's flow starts in the web process's scrape",
    )
    assert samples[("fedsx_inbox_requests_total", (("outcome", "accepted"),))] == 3
    assert samples[("fedsx_trigger_firings_total", (("outcome", "suspended"),))] == 3
    assert samples[("fedsx_flow_instances_waiting", (("kind", "operator"),))] == 3
    # Counted in files under the node's data directory, not in one process's memory.
    assert any((log_dir / "metrics").glob("*.db"))
