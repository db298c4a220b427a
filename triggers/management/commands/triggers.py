"""python manage.py triggers <verb>: add, list, test, load, disable, enable, sweep, apply."""

from __future__ import annotations

import json
import sys
from datetime import datetime, time
from pathlib import Path

import yaml
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from fedsx.models import InboxEntry
from triggers.explain import explain, recipient_for
from triggers.models import Trigger
from triggers.pipeline import apply_triggers
from triggers.registry import TriggerIndex
from triggers.serializers import ExplanationSerializer, TriggerSerializer
from triggers.sweeper import sweep

LOAD_KEYS = {"label", "type", "flow", "guard", "actors", "senders", "enabled"}
# What `list --json` (and the API) print besides: read, never loaded, so a listing loads back.
PRINTED_ONLY = {"id", *TriggerSerializer.Meta.read_only_fields}


def one_line(exc: ValidationError) -> str:
    if hasattr(exc, "error_dict"):
        return "; ".join(
            f"{field}: {' '.join(messages)}" if field != "__all__" else " ".join(messages)
            for field, messages in exc.message_dict.items()
        )
    return " ".join(exc.messages)


def read_structured(path: str) -> object:
    """A JSON or YAML file (JSON is YAML, but JSON errors read better from the JSON parser)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandError(f"cannot read {path}: {exc}") from None
    if path.endswith(".json") or text.lstrip().startswith(("{", "[")):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise CommandError(f"{path} is not valid JSON: {exc}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CommandError(f"{path} is not valid YAML: {str(exc).splitlines()[0]}") from None


def parse_since(value: str) -> datetime:
    # parse_datetime/parse_date return None for a malformed text but raise ValueError for a
    # well-formed impossible one (2024-02-30, 25:00).
    try:
        moment = parse_datetime(value)
        day = parse_date(value) if moment is None else None
    except ValueError as exc:
        raise CommandError(f"--since {value!r} is not a valid date: {exc}") from None
    if moment is None:
        if day is None:
            raise CommandError(f"--since {value!r} is not a date (YYYY-MM-DD[THH:MM[:SS]])")
        moment = datetime.combine(day, time.min)
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment


class Command(BaseCommand):
    help = "Manage triggers: add, list, test, load, disable, enable, sweep, apply."

    def add_arguments(self, parser):
        verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

        add = verbs.add_parser("add", help="add a trigger")
        add.add_argument("--type", required=True, help="activity type, e.g. Follow, or *")
        add.add_argument("--flow", required=True, help="name of the flow to start")
        add.add_argument("--guard", default="", help="JMESPath guard over the activity")
        add.add_argument(
            "--actor", action="append", default=[], help="local actor name (repeatable)"
        )
        add.add_argument(
            "--sender", action="append", default=[], help="sender id or domain (repeatable)"
        )
        add.add_argument("--label", default="", help="a name for people")

        verbs.add_parser("list", help="list triggers")

        test = verbs.add_parser("test", help="show scope and guard verdicts for an activity")
        test.add_argument("id", type=int)
        test.add_argument("--activity", required=True, help="activity JSON file")
        test.add_argument("--actor", help="recipient (local actor name); default: the scope's")

        load = verbs.add_parser("load", help="load a JSON or YAML list of triggers")
        load.add_argument("file")

        for verb in ("disable", "enable"):
            switch = verbs.add_parser(verb, help=f"{verb} a trigger")
            switch.add_argument("id", type=int)

        sweeper = verbs.add_parser("sweep", help="re-enqueue entries not applied in time")
        sweeper.add_argument(
            "--older-than", type=float, default=None, help="seconds (default SWEEP_AFTER_SECONDS)"
        )

        apply = verbs.add_parser("apply", help="re-run triggers over the inbox since a date")
        apply.add_argument("--since", required=True, help="YYYY-MM-DD or an ISO date-time")

        for sub in verbs.choices.values():
            sub.add_argument("--json", action="store_true", help="print JSON")

    def handle(self, *args, verb: str, **options):
        self.as_json = options["json"]
        result = getattr(self, f"do_{verb}")(**options)
        if self.as_json:
            self.stdout.write(json.dumps(result, indent=2, default=str))

    def say(self, text: str) -> None:
        if not self.as_json:
            self.stdout.write(text)

    # verbs -----------------------------------------------------------------------------

    def do_add(self, *, type, flow, guard, actor, sender, label, **_) -> dict:
        trigger = Trigger(
            label=label,
            activity_type=type,
            flow_name=flow,
            guard=guard,
            actor_scope=actor,
            sender_scope=sender,
        )
        self.validate(trigger)
        trigger.save()
        self.say(f"trigger {trigger.pk}: {self.describe(trigger)}  cid={trigger.trigger_cid}")
        return TriggerSerializer(trigger).data

    def do_list(self, **_) -> list[dict]:
        triggers = list(Trigger.objects.order_by("id"))
        for t in triggers:
            state = "on " if t.enabled else "off"
            self.say(
                f"{t.pk:>5} {state} {self.describe(t)}" + (f"  [{t.label}]" if t.label else "")
            )
        if not triggers:
            self.say("no triggers")
        return TriggerSerializer(triggers, many=True).data

    def do_test(self, *, id, activity, actor, **_) -> dict:
        trigger = self.get(id)
        payload = read_structured(activity)
        if not isinstance(payload, dict):
            raise CommandError(f"{activity} must hold one activity (a JSON object)")
        recipient = recipient_for(trigger, actor)
        if recipient is None:
            name = actor or (trigger.actor_scope[0] if trigger.actor_scope else None)
            raise CommandError(f"no local actor named {name}" if name else "no local actor")
        verdict = explain(trigger, payload, recipient)
        guard = "error: " + verdict.guard_error if verdict.guard_error else verdict.guard_passes
        for label, value in (
            ("enabled", verdict.enabled),
            ("type", verdict.type_matches),
            (f"actor scope ({recipient.username})", verdict.actor_in_scope),
            (f"sender scope ({verdict.sender or '?'})", verdict.sender_in_scope),
            ("guard", guard),
            ("would fire", verdict.would_fire),
        ):
            self.say(f"{label:<40} {'yes' if value is True else 'no' if value is False else value}")
        return ExplanationSerializer(verdict).data

    def do_load(self, *, file, **_) -> dict:
        items = read_structured(file)
        if not isinstance(items, list):
            raise CommandError(f"{file} must hold a list of triggers")
        counts = {"created": 0, "updated": 0, "unchanged": 0}
        ids = []
        with transaction.atomic():  # all or nothing
            for number, item in enumerate(items, 1):
                trigger, change = self.load_one(item, f"{file} item {number}")
                counts[change] += 1
                ids.append(trigger.pk)
        self.say(", ".join(f"{n} {what}" for what, n in counts.items()))
        return {**counts, "triggers": ids}

    def do_disable(self, *, id, **_) -> dict:
        return self.switch(id, enabled=False)

    def do_enable(self, *, id, **_) -> dict:
        return self.switch(id, enabled=True)

    def do_sweep(self, *, older_than, **_) -> dict:
        if older_than is not None and older_than < 0:
            raise CommandError("--older-than must be zero or more seconds")
        count, delivered = sweep(older_than)
        if not delivered:
            raise CommandError(f"{count} entries pending, but the broker refused them")
        self.say(f"{count} entries re-enqueued")
        return {"enqueued": count}

    def do_apply(self, *, since, **_) -> dict:
        moment = parse_since(since)
        entries = InboxEntry.objects.filter(created_at__gte=moment).select_related(
            "actor", "activity"
        )
        total = entries.count()
        index = TriggerIndex.load()
        fired = done = 0
        for entry in entries.order_by("pk").iterator(chunk_size=500):
            fired += len(apply_triggers(entry, index))
            done += 1
            self.progress(done, total)
        self.say(f"{done} entries, {fired} new firings")
        return {"entries": done, "firings": fired}

    # helpers ---------------------------------------------------------------------------

    def get(self, pk: int) -> Trigger:
        trigger = Trigger.objects.filter(pk=pk).first()
        if trigger is None:
            raise CommandError(f"no trigger {pk}")
        return trigger

    def validate(self, trigger: Trigger) -> None:
        try:
            trigger.full_clean(exclude=["trigger_cid"], validate_unique=False)
        except ValidationError as exc:
            raise CommandError(one_line(exc)) from None

    def switch(self, pk: int, *, enabled: bool) -> dict:
        trigger = self.get(pk)
        trigger.switch(enabled)
        self.say(f"trigger {pk} {'enabled' if enabled else 'disabled'}")
        return TriggerSerializer(trigger).data

    def load_one(self, item: object, where: str) -> tuple[Trigger, str]:
        if not isinstance(item, dict):
            raise CommandError(f"{where}: a trigger is a mapping with type and flow")
        unknown = set(item) - LOAD_KEYS - PRINTED_ONLY
        if unknown:
            raise CommandError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
        if not isinstance(item.get("enabled", True), bool):
            raise CommandError(f"{where}: enabled is true or false")
        fields = {}
        for key, attr in (("label", "label"), ("type", "activity_type"), ("flow", "flow_name")):
            value = item.get(key, "")
            if not isinstance(value, str):
                raise CommandError(f"{where}: {key} must be text")
            fields[attr] = value
        guard = item.get("guard") or ""
        if not isinstance(guard, str):
            raise CommandError(f"{where}: guard must be text")
        candidate = Trigger(
            **fields,
            guard=guard,
            actor_scope=item.get("actors") or [],
            sender_scope=item.get("senders") or [],
            enabled=item.get("enabled", True),
        )
        try:
            candidate.full_clean(validate_unique=False, exclude=["trigger_cid"])
        except ValidationError as exc:
            existing = Trigger.objects.filter(trigger_cid=candidate.trigger_cid).first()
            if existing is None or set(exc.message_dict) != {"__all__"}:
                raise CommandError(f"{where}: {one_line(exc)}") from None
        existing = Trigger.objects.filter(trigger_cid=candidate.trigger_cid).first()
        if existing is None:
            candidate.save()
            return candidate, "created"
        if (existing.label, existing.enabled) == (candidate.label, candidate.enabled):
            return existing, "unchanged"
        existing.label, existing.enabled = candidate.label, candidate.enabled
        existing.save(update_fields=["label", "enabled", "updated_at"])
        return existing, "updated"

    def describe(self, t: Trigger) -> str:
        scope = ",".join(t.actor_scope) or "all actors"
        senders = f" from {','.join(t.sender_scope)}" if t.sender_scope else ""
        guard = f" if {t.guard}" if t.guard else ""
        return f"{t.activity_type} to {scope}{senders}{guard} → {t.flow_name}"

    def progress(self, done: int, total: int) -> None:
        if self.as_json or not total:
            return
        width = 30
        filled = width * done // total
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
        if done == total:
            sys.stderr.write("\n")
        sys.stderr.flush()
