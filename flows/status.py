"""The one status vocabulary of flows, defined here and nowhere else.

An instance is ``running`` while it is driven, ``suspended`` while it waits (for an
operator, an activity or a time: ``Waiting``), and ends ``done``, ``crashed``,
``cancelled`` or ``nondeterministic``. A store call's ``Outcome.status`` is the instance's
status after the call, or ``error`` when the call was refused. A trigger's ``Firing``
records the same names for the instance it started (``started`` while its first drive
has not ended, ``error`` when no instance could be started). The ``--json`` outputs of
the commands and the admin use these strings as they are.
"""

from __future__ import annotations

from django.db import models

RUNNING = "running"
SUSPENDED = "suspended"
DONE = "done"
CRASHED = "crashed"
CANCELLED = "cancelled"
NONDETERMINISTIC = "nondeterministic"
STARTED = "started"
ERROR = "error"


class InstanceStatus(models.TextChoices):
    RUNNING = RUNNING
    SUSPENDED = SUSPENDED
    DONE = DONE
    CRASHED = CRASHED
    CANCELLED = CANCELLED
    NONDETERMINISTIC = NONDETERMINISTIC


class FiringOutcome(models.TextChoices):
    STARTED = STARTED
    DONE = DONE
    SUSPENDED = SUSPENDED
    CRASHED = CRASHED
    ERROR = ERROR


class Waiting(models.TextChoices):
    OPERATOR = "operator"  # an operator's resume (ctx.wait)
    ACTIVITY = "activity"  # an arriving activity (ctx.receive), maybe with a deadline
    TIMER = "timer"  # a time (ctx.sleep)
