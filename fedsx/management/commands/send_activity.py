import sys
import uuid
from pathlib import Path

import httpx
import orjson
from django.core.management.base import BaseCommand, CommandError

from fedsx import httpsig, media
from fedsx.models import Actor


class Command(BaseCommand):
    help = (
        "Sign an activity as a local actor and POST it to an inbox: a test sender "
        "(Mastodon-style draft-cavage signature, or RFC 9421 with --rfc9421)."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="JSON file with the activity, or - for stdin")
        parser.add_argument("--to", required=True, help="inbox URL to POST to")
        parser.add_argument("--as", dest="sender", required=True, help="local actor name")
        parser.add_argument("--rfc9421", action="store_true", help="sign with RFC 9421")

    def handle(self, *args, file: str, to: str, sender: str, rfc9421: bool, **options):
        actor = Actor.objects.filter(is_local=True, username=sender).first()
        if actor is None:
            raise CommandError(f"no local actor named {sender!r}")
        activity = self._activity(file, actor)
        body = orjson.dumps(activity)
        headers = {"Content-Type": media.ACTIVITY_JSON, "Accept": media.ACTIVITY_JSON}
        sign = httpsig.sign_rfc9421 if rfc9421 else httpsig.sign_cavage
        try:
            headers |= sign("POST", to, headers, body, actor.key_id, actor.private_key_pem)
            response = httpx.post(to, content=body, headers=headers, timeout=10, trust_env=False)
        except (httpx.HTTPError, ValueError) as exc:
            raise CommandError(f"could not deliver to {to}: {exc}") from None
        self.stdout.write(f"{response.status_code} {response.text}".strip())
        if response.status_code >= 400:
            raise CommandError(f"the inbox refused the activity ({response.status_code})")

    @staticmethod
    def _activity(file: str, actor: Actor) -> dict:
        try:
            raw = sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
            activity = orjson.loads(raw)
        except OSError as exc:
            raise CommandError(f"cannot read {file}: {exc.strerror}") from None
        except orjson.JSONDecodeError as exc:
            raise CommandError(f"{file} is not valid JSON: {exc}") from None
        if not isinstance(activity, dict):
            raise CommandError(f"{file} does not hold a JSON object")
        # Fill what a hand-written test activity usually leaves out.
        activity.setdefault("@context", media.AS_CONTEXT)
        activity.setdefault("actor", actor.ap_id)
        activity.setdefault("id", f"{actor.ap_id}/activities/{uuid.uuid4()}")
        return activity
