"""Syncing the registered flows into ``FlowDefinition`` rows (``manage.py flows register``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from django.db import transaction
from django.db.models import Count, QuerySet

from fedsx.counts import count_of

from .models import FlowDefinition, FlowInstance
from .registry import registered_flows, registration


@dataclass
class SyncReport:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    # changed flow -> how many suspended instances started under other code
    suspended_on_old_code: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def sync_definitions() -> SyncReport:
    """Make the FlowDefinition rows match the flows registered in this process."""
    report = SyncReport()
    with transaction.atomic():
        rows = {row.name: row for row in FlowDefinition.objects.select_for_update()}
        for name in registered_flows():
            flow = registration(name)
            row = rows.pop(name, None)
            if row is None:
                FlowDefinition.objects.create(
                    name=name, import_path=flow.import_path, code_hash=flow.code_hash
                )
                report.added.append(name)
            elif (row.import_path, row.code_hash) != (flow.import_path, flow.code_hash):
                row.import_path, row.code_hash = flow.import_path, flow.code_hash
                row.save(update_fields=["import_path", "code_hash", "updated_at"])
                report.changed.append(name)
            else:
                report.unchanged.append(name)
        report.removed = sorted(rows)
        FlowDefinition.objects.filter(name__in=report.removed).delete()
    report.suspended_on_old_code = _suspended_on_old_code(report.changed)
    return report


def _suspended_on_old_code(names: list[str]) -> dict[str, int]:
    counts = {}
    for name in names:
        current = registration(name).code_hash
        n = (
            FlowInstance.objects.filter(flow_name=name, status=FlowInstance.Status.SUSPENDED)
            .exclude(code_hash=current)
            .aggregate(n=Count("id"))["n"]
        )
        if n:
            counts[name] = n
    return counts


def with_instance_counts(definitions: QuerySet[FlowDefinition]) -> QuerySet[FlowDefinition]:
    """Annotate ``n_<status>`` for every instance status: one subquery per status on the
    indexed ``flow_name`` and ``status``, never a scan of the instances per page row."""
    counts = {
        f"n_{status}": count_of(FlowInstance.objects.filter(status=status), "flow_name", "name")
        for status in FlowInstance.Status.values
    }
    return definitions.annotate(**counts)


def code_state(definition: FlowDefinition) -> str:
    """Whether this process runs the code the definition was registered with."""
    flow = registration(definition.name)
    if flow is None:
        return "not registered"
    return "as registered" if flow.code_hash == definition.code_hash else "changed: run register"
