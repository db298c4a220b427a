from prometheus_client.parser import text_string_to_metric_families

from fedsx.metrics import REGISTRY
from tests.outbox.conftest import follows, receiver, remote_actor  # noqa: F401


def value(name: str, **labels: str) -> float:
    """A sample of the in-memory registry (0 when it has not been recorded yet)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def parse(text: str) -> dict[str, dict[tuple, float]]:
    """The exposition as {metric family: {(sample name, sorted labels): value}}."""
    families = {}
    for family in text_string_to_metric_families(text):
        samples = families.setdefault(family.name, {})
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return families
