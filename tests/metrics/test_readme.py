"""The README's alert rules and scrape config are written against the metrics /metrics
serves: every fedsx_ name in its Metrics section's YAML exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from .conftest import parse

README = Path(__file__).resolve().parents[2] / "README.md"


def metrics_yaml() -> list[dict]:
    text = README.read_text()
    section = text[text.index("\n## Metrics\n") :]
    section = section[: section.index("\n## ", 1)]
    return [yaml.safe_load(block) for block in re.findall(r"```yaml\n(.*?)```", section, re.S)]


def served_names(text: str) -> set[str]:
    names = set()
    for family, samples in parse(text).items():
        names.add(family)
        names.update(sample for sample, _ in samples)
        names.add(f"{family}_total")  # a counter's samples, before any is recorded
    return names


@pytest.mark.django_db
def test_the_alert_rules_use_served_metric_names(client):
    scrape, rules = metrics_yaml()
    assert scrape["scrape_configs"][0]["metrics_path"] == "/metrics"
    (group,) = rules["groups"]
    alerts = {rule["alert"]: rule for rule in group["rules"]}
    assert [alerts[name].get("for") for name in alerts] == ["10m", "10m", None]
    assert "> 3600" in alerts["FedsxHostHeld"]["expr"]  # an hour, measured by the gauge
    used = {name for rule in alerts.values() for name in re.findall(r"fedsx_\w+", rule["expr"])}
    assert used, "the rules name no fedsx metric"
    served = served_names(client.get("/metrics").content.decode())
    assert used <= served, used - served
