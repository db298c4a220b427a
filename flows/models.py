"""The durable records of flows: definitions, instances and each instance's replay log.

An instance is fully described by its flow name, its input and its log: replaying the log
against the flow's code rebuilds its state, so nothing else about a running flow is kept.
The log is append-only; a resume adds one ``wait`` row (plus whatever the flow then does)
and never rewrites an earlier row.
"""

from __future__ import annotations

import re

from django.db import models
from django.utils import timezone

_DIGITS = re.compile(r"[0-9]+")


def is_instance_id(text: str) -> bool:
    """Could ``text`` be an instance's primary key? ASCII digits only (``str.isdigit``
    accepts "²", which ``int`` refuses) and within a bigint."""
    return _DIGITS.fullmatch(text) is not None and int(text) < 2**63


class FlowDefinition(models.Model):
    """A registered flow as last synced by ``manage.py flows register``."""

    name = models.CharField(max_length=200, unique=True)
    import_path = models.CharField(max_length=500)
    code_hash = models.CharField(max_length=64, help_text="sha256 of the flow's source.")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class FlowInstance(models.Model):
    """One run of a flow, suspended between resumes or finished."""

    class Status(models.TextChoices):
        RUNNING = "running"
        SUSPENDED = "suspended"
        DONE = "done"
        CRASHED = "crashed"
        CANCELLED = "cancelled"
        NONDETERMINISTIC = "nondeterministic"

    id = models.BigAutoField(primary_key=True)
    flow_name = models.CharField(max_length=200, db_index=True)
    code_hash = models.CharField(max_length=64, help_text="Hash of the flow's code at start.")
    input = models.JSONField(default=dict)
    status = models.CharField(
        max_length=20, choices=Status.choices, default=Status.RUNNING, db_index=True
    )
    waiting_tag = models.CharField(max_length=200, blank=True, db_index=True)
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True, help_text="What went wrong, with the traceback.")
    log_length = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now, db_index=True, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.flow_name} #{self.pk} ({self.status})"


class FlowLogEntry(models.Model):
    """One recorded answer in an instance's replay log."""

    class Kind(models.TextChoices):
        STEP = "step"  # a side effect ran; value is its JSON result
        WAIT = "wait"  # a resume supplied value for the wait on tag
        NOW = "now"  # the clock was read; value is the ISO time
        ERROR = "error"  # a step or the body raised; audit only, skipped on replay

    id = models.BigAutoField(primary_key=True)
    instance = models.ForeignKey(FlowInstance, on_delete=models.CASCADE, related_name="log")
    seq = models.PositiveIntegerField()
    kind = models.CharField(max_length=10, choices=Kind.choices)
    tag = models.CharField(max_length=200, blank=True, help_text="Step name or wait tag.")
    value = models.JSONField(null=True, blank=True)
    time = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["instance", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["instance", "seq"], name="flows_log_unique_seq")
        ]
        verbose_name_plural = "flow log entries"

    def __str__(self) -> str:
        return f"#{self.instance_id}[{self.seq}] {self.kind} {self.tag}"
