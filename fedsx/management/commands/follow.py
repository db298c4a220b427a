"""``manage.py follow --as NAME TARGET``: a local actor follows a remote (or local) actor.

TARGET is ``acct:user@host``, ``@user@host``, ``user@host`` or an actor URL, resolved
through WebFinger and the actor document. The Follow goes through the outbox; its Follow
row is pending until the remote Accept (or Reject) arrives.
"""

from __future__ import annotations

from typing import Any

from fedsx.models import Actor, Follow

from .post import OperatorCommand


class Unresolved(Exception):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code, self.detail = code, detail


def resolve(target: str) -> Actor:
    """The actor TARGET names (resolve_actor's answer); Unresolved with a one-line reason."""
    from fedsx.client import FetchError
    from fedsx.resolve import ResolveError, resolve_actor

    try:
        return resolve_actor(target)
    except ResolveError as exc:
        code, detail = getattr(exc, "code", "") or "unresolvable", getattr(exc, "detail", exc)
    except FetchError as exc:
        code, detail = exc.code, exc.detail
    raise Unresolved(str(code), f"cannot resolve {target!r}: {detail}")


class Command(OperatorCommand):
    help = (
        "Follow an actor (acct:user@host, @user@host, user@host or its URL) as a local "
        "actor. Prints the Follow's id; the follow is pending until the actor accepts."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("target", metavar="TARGET", help="user@host or an actor URL")
        parser.add_argument("--as", dest="sender", required=True, help="local actor name")
        parser.add_argument("--json", action="store_true", help="machine-readable output")

    def handle(self, *args, target: str, sender: str, **options: Any) -> None:
        self.as_json = options["json"]
        actor = self.local_actor(sender)
        try:
            followed = resolve(target.strip())
        except Unresolved as exc:
            self.fail(exc.code, exc.detail)
        if followed.pk == actor.pk:
            self.fail("self_follow", f"{sender} cannot follow itself")
        existing = Follow.objects.filter(follower=actor, following=followed).first()
        if existing is not None and existing.state == Follow.State.ACCEPTED:
            self.fail(
                "already_following",
                f"{sender} already follows {followed.ap_id} (accepted): unfollow first to "
                "follow again",
            )
        activity = self.post(
            actor, {"type": "Follow", "object": followed.ap_id, "to": [followed.ap_id]}
        )
        follow = Follow.objects.filter(follower=actor, following=followed).first()
        self.posted(
            activity,
            object=followed.ap_id,
            state=follow.state if follow is not None else None,
        )
