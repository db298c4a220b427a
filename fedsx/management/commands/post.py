"""``manage.py post --as NAME FILE|-``: post an activity (or a bare object) through the outbox.

The outbox mints the ids, wraps a bare object in a Create and records one Delivery per
target inbox; the deliveries go after the commit. A refusal prints one line on stderr,
exits non-zero and stores nothing; with ``--json`` stdout still gets ``{"error", "detail"}``.
The base class here is shared by the other operator commands (follow, unfollow,
deliveries, hosts).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, NoReturn

import orjson
from django.core.management.base import BaseCommand, CommandError

from fedsx.api.serializers import PostedSerializer
from fedsx.errors import FederationError
from fedsx.models import Activity, Actor, local_users


class OperatorCommand(BaseCommand):
    """``--json`` output and one-line refusals, as the flows and triggers commands do."""

    as_json = False

    def emit(self, data: Any, text: str) -> None:
        self.stdout.write(
            json.dumps(data, ensure_ascii=False, default=_jsonable) if self.as_json else text
        )

    def warn(self, text: str) -> None:
        if not self.as_json:
            self.stderr.write(text)

    def fail(self, error: str, detail: str) -> NoReturn:
        """Refuse: one line (the detail) on stderr, non-zero exit; nothing was changed."""
        detail = " ".join(str(detail).split())  # one line, whatever a message held
        if self.as_json:
            self.stdout.write(json.dumps({"error": error, "detail": detail}, ensure_ascii=False))
        raise CommandError(detail)

    def local_actor(self, name: str) -> Actor:
        # The instance actor has no name to give here: it is the node, and posts nothing.
        actor = local_users().filter(username=name).first()
        if actor is None:
            self.fail("unknown_actor", f"no local actor named {name!r}")
        return actor

    def post(self, sender: Actor, document: dict[str, Any]) -> Activity:
        from fedsx import outbox  # the outbox imports the jobs layer: only when posting

        try:
            return outbox.post(sender, document)
        except FederationError as exc:
            self.fail(exc.code, str(exc.detail))

    def posted(self, activity: Activity, **extra: Any) -> None:
        """Print what a post made: the minted id (and, with --json, the API's shape of it)."""
        data = {**PostedSerializer(activity).data, **extra}
        for item in data["undeliverable"]:
            self.warn(f"not delivered to {item['target']}: {item['error']}")
        self.emit(data, activity.ap_id)


def _jsonable(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


class BadDocument(Exception):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code, self.detail = code, detail


def read_document(path: str, stdin) -> dict[str, Any]:
    """The JSON object in ``path`` (``-``: stdin); BadDocument for anything else."""
    name = "stdin" if path == "-" else path
    try:
        if path == "-":
            raw = stdin.buffer.read() if hasattr(stdin, "buffer") else stdin.read()
        else:
            raw = Path(path).read_bytes()
    except OSError as exc:
        raise BadDocument("unreadable_file", f"cannot read {name}: {exc.strerror or exc}") from None
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadDocument("invalid_json", f"{name} is not valid JSON: {exc}") from None
    if isinstance(document, list):
        raise BadDocument(
            "not_an_object", f"{name} holds a JSON array: post one activity or object at a time"
        )
    if not isinstance(document, dict):
        raise BadDocument(
            "not_an_object", f"{name} does not hold a JSON object (an activity or an object)"
        )
    return document


class Command(OperatorCommand):
    help = (
        "Post an activity, or a bare object (wrapped in a Create), as a local actor: the "
        "outbox mints its id and delivers it to every addressed inbox. Prints the id."
    )
    stealth_options = ("stdin",)

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", metavar="FILE", help="JSON file, or - to read stdin")
        parser.add_argument("--as", dest="sender", required=True, help="local actor name")
        parser.add_argument("--json", action="store_true", help="machine-readable output")

    def handle(self, *args, file: str, sender: str, **options) -> None:
        self.as_json = options["json"]
        actor = self.local_actor(sender)
        try:
            document = read_document(file, options.get("stdin") or sys.stdin)
        except BadDocument as exc:
            self.fail(exc.code, exc.detail)
        self.posted(self.post(actor, document))
