"""``manage.py flows <verb>``: operate durable flows from the shell.

Every verb takes ``--json``. A refusal (bad JSON, an unknown flow or instance, a crash)
prints one line on stderr and exits non-zero; with ``--json`` stdout still gets the outcome.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from flows import store
from flows.definitions import sync_definitions
from flows.models import FlowDefinition, FlowInstance, FlowLogEntry, is_instance_id
from flows.registry import registered_flows, registration
from flows.serializers import (
    FlowInstanceDetailSerializer,
    FlowInstanceSerializer,
    FlowInstanceStatusSerializer,
    OutcomeSerializer,
    RegisteredFlowSerializer,
    ReplayCheckSerializer,
    SyncReportSerializer,
)

STATUSES = FlowInstance.Status.values
WAITING = FlowInstance.Waiting.values
MAX_LIMIT = 10_000  # more is a dump, not a listing (and past 2**63 the database refuses)
VERBS = {
    "list": "registered flows and whether their definitions are synced",
    "register": "sync the registered flows into the database and report what changed",
    "start": "start an instance of a flow",
    "resume": "answer the wait an instance is suspended on",
    "status": "show one instance",
    "instances": "list instances, newest first",
    "cancel": "cancel an instance that is not done",
    "retry": "drive a crashed or non-deterministic instance again",
    "replay": "re-drive every suspended instance against the current code, writing nothing",
    "wake": "fire an instance's timer now (a sleep ends, a wait or receive times out)",
}


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json_argument(text: str, option: str) -> Any:
    """JSON from an option's text, or from a file when the text is ``@path``."""
    if text.startswith("@"):
        try:
            text = Path(text[1:]).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"cannot read {option} file {text[1:]!r}: {exc}") from None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise CommandError(f"{option} is not valid JSON: {exc}") from None


class Command(BaseCommand):
    help = "Operate durable flows: " + ", ".join(VERBS) + "."

    def add_arguments(self, parser) -> None:
        verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
        sub = {name: verbs.add_parser(name, help=text) for name, text in VERBS.items()}
        for verb in sub.values():
            verb.add_argument("--json", action="store_true", help="machine-readable output")
        sub["start"].add_argument("name", help="the flow's registered name")
        sub["start"].add_argument(
            "--input", default="{}", help="a JSON object, or @FILE to read one (default {})"
        )
        for name in ("resume", "status", "cancel", "retry", "wake"):
            sub[name].add_argument("id", help="the instance id")
        sub["resume"].add_argument("--value", required=True, help="a JSON value, or @FILE")
        sub["resume"].add_argument(
            "--tag", help="refuse unless the instance waits on this tag (the answer is for it)"
        )
        sub["status"].add_argument("--log", action="store_true", help="include the replay log")
        sub["instances"].add_argument("--flow", help="only instances of this flow")
        sub["instances"].add_argument(
            "--status", help="only instances in this status: " + ", ".join(STATUSES)
        )
        sub["instances"].add_argument(
            "--waiting", help="only suspended instances waiting for: " + ", ".join(WAITING)
        )
        sub["instances"].add_argument("--limit", type=int, default=50, help="at most (50)")
        sub["replay"].add_argument("--flow", help="only instances of this flow")

    def handle(self, *args, verb: str, **options) -> None:
        self.as_json = options["json"]
        getattr(self, "do_" + verb)(**options)

    # ── output ────────────────────────────────────────────────────────────────────

    def emit(self, data: Any, text: str) -> None:
        self.stdout.write(
            json.dumps(data, ensure_ascii=False, default=str) if self.as_json else text
        )

    def fail(self, error: str, detail: str) -> None:
        if self.as_json:
            self.stdout.write(json.dumps({"error": error, "detail": detail}))
        raise CommandError(detail)

    def report(self, instance_id: int | None, outcome: store.Outcome) -> None:
        """Print an outcome; a refused or failed call exits non-zero."""
        data = OutcomeSerializer.of(instance_id, outcome)
        if outcome.status == "error":
            self.fail(outcome.error, outcome.detail)
        text = f"instance {instance_id}: {outcome.status}"
        if outcome.status == "done":
            text += " " + json.dumps(outcome.value, ensure_ascii=False)
        elif outcome.detail and outcome.detail != outcome.status:
            text += f" - {outcome.detail}"
        self.emit(data, text)
        if not outcome.ok:
            raise CommandError(f"instance {instance_id}: {outcome.detail}")

    def instance_id(self, text: str) -> int:
        # Not str.isdigit(): it accepts "²", which int() refuses.
        if not is_instance_id(text) or not FlowInstance.objects.filter(pk=int(text)).exists():
            self.fail("no_such_instance", f"there is no flow instance {text!r}")
        return int(text)

    # ── verbs ─────────────────────────────────────────────────────────────────────

    def do_list(self, **options) -> None:
        synced = dict(FlowDefinition.objects.values_list("name", "code_hash"))
        rows = []
        for name in registered_flows():
            flow = registration(name)
            state = {None: "not registered in the database", flow.code_hash: "synced"}.get(
                synced.get(name), "changed since the last register"
            )
            rows.append(
                {
                    "name": name,
                    "import_path": flow.import_path,
                    "code_hash": flow.code_hash,
                    "definition": state,
                }
            )
        lines = [
            f"{r['name']}  {r['import_path']}  {r['code_hash'][:12]}  ({r['definition']})"
            for r in rows
        ]
        self.emit(
            RegisteredFlowSerializer(rows, many=True).data,
            "\n".join(lines) or "no flows are registered",
        )

    def do_register(self, **options) -> None:
        report = sync_definitions()
        lines = [f"added: {name}" for name in report.added]
        for name in report.changed:
            waiting = report.suspended_on_old_code.get(name, 0)
            note = f" ({waiting} suspended instances started under the old code)" if waiting else ""
            lines.append(f"changed: {name}{note}")
        lines += [f"removed: {name}" for name in report.removed]
        if not lines:
            lines = [f"no changes ({len(report.unchanged)} flows registered)"]
        self.emit(SyncReportSerializer(report).data, "\n".join(lines))

    def do_start(self, name: str, input: str, **options) -> None:
        if registration(name) is None:
            self.fail("no_such_flow", f"no flow is registered as {name!r}")
        value = parse_json_argument(input, "--input")
        self.report(*store.start(name, value))

    def do_resume(self, id: str, value: str, tag: str | None = None, **options) -> None:
        pk = self.instance_id(id)
        self.report(pk, store.resume(pk, parse_json_argument(value, "--value"), tag=tag))

    def do_cancel(self, id: str, **options) -> None:
        pk = self.instance_id(id)
        self.report(pk, store.cancel(pk))

    def do_wake(self, id: str, **options) -> None:
        pk = self.instance_id(id)
        self.report(pk, store.wake(pk, early=True))

    def do_retry(self, id: str, **options) -> None:
        pk = self.instance_id(id)
        self.report(pk, store.retry(pk))

    def do_status(self, id: str, log: bool, **options) -> None:
        instance = FlowInstance.objects.get(pk=self.instance_id(id))
        if log:  # the whole log, however long
            data = FlowInstanceDetailSerializer(instance, context={"log_limit": None}).data
        else:
            data = FlowInstanceStatusSerializer(instance).data
        lines = [
            f"instance {instance.pk} of {instance.flow_name!r}: {instance.status}",
            f"  input:   {json.dumps(instance.input, ensure_ascii=False)}",
        ]
        if instance.status == FlowInstance.Status.SUSPENDED:
            lines.append(f"  waiting: {store.waiting_for(instance)}{store.time_left(instance)}")
        if instance.status == FlowInstance.Status.DONE:
            lines.append(f"  result:  {json.dumps(instance.result, ensure_ascii=False)}")
        if instance.error:
            lines.append("  error:   " + instance.error.replace("\n", "\n  "))
        lines.append(f"  log:     length {instance.log_length}, code {instance.code_hash[:12]}")
        lines.append(
            f"  created: {_when(instance.created_at)}, updated {_when(instance.updated_at)}"
        )
        if log:  # the entries the serializer read for ``data``: the log is read once
            lines += [_log_line(e) for e in instance._log_entries]
        self.emit(data, "\n".join(lines))

    def do_instances(
        self, flow: str | None, status: str | None, waiting: str | None, limit: int, **options
    ) -> None:
        if not 1 <= limit <= MAX_LIMIT:
            self.fail("bad_limit", f"--limit must be between 1 and {MAX_LIMIT}")
        if status is not None and status not in STATUSES:
            self.fail("bad_status", f"--status must be one of {', '.join(STATUSES)}")
        if waiting is not None and waiting not in WAITING:
            self.fail("bad_waiting", f"--waiting must be one of {', '.join(WAITING)}")
        found = list(store.instances(flow=flow, status=status, waiting=waiting)[:limit])
        lines = [
            f"{i.pk:>8}  {i.flow_name}  {i.status}"
            + (f" on {i.waiting_tag!r}" if i.waiting_tag else "")
            + (f" until {i.wake_at:%Y-%m-%d %H:%M:%S}" if i.wake_at else "")
            + f"  log {i.log_length}  updated {_when(i.updated_at)}"
            for i in found
        ]
        self.emit(FlowInstanceSerializer(found, many=True).data, "\n".join(lines) or "no instances")

    def do_replay(self, flow: str | None, **options) -> None:
        checks = store.check_replay(flow=flow)
        bad = [c for c in checks if not c.ok]
        lines = [
            f"{'ok  ' if c.ok else 'FAIL'}  {c.instance_id}  {c.flow_name}: {c.detail}"
            for c in checks
        ]
        lines.append(
            f"{len(checks)} suspended instances replayed, {len(bad)} would be non-deterministic"
        )
        self.emit(ReplayCheckSerializer(checks, many=True).data, "\n".join(lines))
        if bad:
            raise CommandError(f"{len(bad)} suspended instances would be non-deterministic")


def _when(moment) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S}"


def _log_line(entry: FlowLogEntry) -> str:
    value = json.dumps(entry.value, ensure_ascii=False)
    return f"  {entry.seq:>5}  {entry.time:%H:%M:%S}  {entry.kind:<5} {entry.tag!r}  {value}"
