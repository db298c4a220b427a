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

from .status import InstanceStatus, Waiting

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

    Status = InstanceStatus  # flows/status.py: the one vocabulary

    id = models.BigAutoField(primary_key=True)
    flow_name = models.CharField(max_length=200, db_index=True)
    code_hash = models.CharField(max_length=64, help_text="Hash of the flow's code at start.")
    input = models.JSONField(default=dict)
    status = models.CharField(
        max_length=20, choices=Status.choices, default=Status.RUNNING, db_index=True
    )
    waiting_tag = models.CharField(max_length=200, blank=True, db_index=True)

    Waiting = Waiting  # flows/status.py: what a suspended instance waits for

    # What a suspended instance waits for; empty otherwise.
    waiting_kind = models.CharField(max_length=10, choices=Waiting.choices, blank=True)
    waiting_match = models.JSONField(null=True, blank=True, help_text="What ctx.receive waits for.")
    # The match's index key (flows.matching): arrivals find their waiters by it.
    match_key = models.CharField(max_length=600, blank=True)
    # When the timer fires, or the receive times out; indexed: a tick costs what is due.
    wake_at = models.DateTimeField(null=True, blank=True)
    # A receive registered and not yet looked back for answers that came first.
    lookback_due = models.BooleanField(default=False)
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True, help_text="What went wrong, with the traceback.")
    log_length = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now, db_index=True, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(
                fields=["match_key"],
                condition=models.Q(waiting_kind="activity"),
                name="flows_waiting_for_activity",
            ),
            models.Index(
                fields=["wake_at"],
                condition=models.Q(wake_at__isnull=False),
                name="flows_waiting_for_time",
            ),
            models.Index(
                fields=["updated_at"],
                condition=models.Q(lookback_due=True),
                name="flows_lookback_due",
            ),
            # What suspended instances wait for, counted for /metrics at every scrape.
            models.Index(
                fields=["waiting_kind"],
                condition=models.Q(status="suspended"),
                name="flows_suspended_by_kind",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.flow_name} #{self.pk} ({self.status})"


class FlowLogEntry(models.Model):
    """One recorded answer in an instance's replay log."""

    class Kind(models.TextChoices):
        STEP = "step"  # a side effect ran; value is its JSON result
        WAIT = "wait"  # a resume supplied value for the wait on tag
        NOW = "now"  # the clock was read; value is the ISO time
        RECEIVE = "receive"  # an activity answered a receive ({"activity", "entry", …})
        SLEEP = "sleep"  # a timer fired; value {"due", "woke"}
        TIMEOUT = "timeout"  # a wait's or receive's deadline passed first; {"due", "woke"}
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


class Receipt(models.Model):
    """An inbox entry that answered a receive of an instance: the unique claim that makes
    each entry resume each instance at most once, whoever delivers it (the pipeline, the
    look-back, a retried task, two workers at once)."""

    instance = models.ForeignKey(FlowInstance, on_delete=models.CASCADE, related_name="receipts")
    entry = models.ForeignKey("fedsx.InboxEntry", on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["instance", "entry"], name="flows_receipt_unique")
        ]

    def __str__(self) -> str:
        return f"#{self.instance_id} ← entry {self.entry_id}"
