"""``manage.py unfollow --as NAME TARGET``: withdraw a local actor's follow (an Undo of it).

TARGET is written as for ``follow``; it is looked up among the stored actors first (no
network), and resolved only when none has that id or name. A pending follow is withdrawn
too.
"""

from __future__ import annotations

from typing import Any

from fedsx.models import Actor, Follow

from .follow import Unresolved, resolve
from .post import OperatorCommand


def handle_parts(target: str) -> tuple[str, str] | None:
    """``acct:user@host``, ``@user@host`` or ``user@host`` as (user, host); None for a URL
    or anything else."""
    text = target.strip()
    text = text.removeprefix("acct:").removeprefix("@")
    user, at, host = text.partition("@")
    if not at or not user or not host or "@" in host or "/" in text:
        return None
    return user, host.lower().rstrip(".")


def stored_actors(target: str):
    """The stored actors TARGET names (by id, or by user name and domain): no fetching."""
    if target.startswith(("https://", "http://")):
        return Actor.objects.filter(ap_id=target)
    parts = handle_parts(target)
    if parts is None:
        return Actor.objects.none()
    user, host = parts
    return Actor.objects.filter(username__iexact=user, domain=host)


class Command(OperatorCommand):
    help = (
        "Stop following an actor: posts an Undo of the local actor's Follow. Prints the "
        "Undo's id; an error when the local actor does not follow TARGET."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("target", metavar="TARGET", help="user@host or an actor URL")
        parser.add_argument("--as", dest="sender", required=True, help="local actor name")
        parser.add_argument("--json", action="store_true", help="machine-readable output")

    def handle(self, *args, target: str, sender: str, **options: Any) -> None:
        self.as_json = options["json"]
        actor = self.local_actor(sender)
        target = target.strip()
        follows = Follow.objects.filter(follower=actor).select_related("following")
        known = stored_actors(target)
        if known.exists():
            follow = follows.filter(following__in=known).first()
        else:
            # Never seen under this name (WebFinger's host need not be the actor's): ask.
            try:
                follow = follows.filter(following=resolve(target)).first()
            except Unresolved:
                follow = None
        if follow is None:
            self.fail("not_following", f"{sender} does not follow {target}")
        followed = follow.following
        inner = {"type": "Follow", "actor": actor.ap_id, "object": followed.ap_id}
        if follow.follow_activity_id:
            inner = {"type": "Follow", "id": follow.follow_activity_id, **inner}
        undo = {"type": "Undo", "object": inner, "to": [followed.ap_id]}
        activity = self.post(actor, undo)
        self.posted(activity, object=follow.follow_activity_id or None, unfollowed=followed.ap_id)
