"""``manage.py follow --as NAME TARGET``: a local actor follows a remote (or local) actor.

TARGET is ``acct:user@host``, ``@user@host``, ``user@host`` or an actor URL, resolved
through WebFinger and the actor document. It starts the ``follow`` flow, which sends the
Follow through the outbox and waits for the remote Accept or Reject (``--timeout``
seconds, ``FOLLOW_TIMEOUT_SECONDS`` by default); the Follow row is pending until then, and
``flows status`` on the printed instance shows how it ended: accepted, rejected, timed out.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

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
        parser.add_argument(
            "--timeout",
            type=float,
            help="seconds to wait for the Accept or Reject (default FOLLOW_TIMEOUT_SECONDS)",
        )
        parser.add_argument("--json", action="store_true", help="machine-readable output")

    def handle(self, *args, target: str, sender: str, **options: Any) -> None:
        self.as_json = options["json"]
        timeout = options.get("timeout")
        if timeout is not None and not 0 < timeout < 10**9:
            self.fail("bad_timeout", "--timeout is a positive number of seconds")
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
        instance_id, activity = self.start_flow(actor, followed, timeout)
        follow = Follow.objects.filter(follower=actor, following=followed).first()
        self.posted(
            activity,
            object=followed.ap_id,
            state=follow.state if follow is not None else None,
            flow_instance=instance_id,
        )

    def start_flow(self, actor: Actor, followed: Actor, timeout: float | None):
        """Start the follow flow; on any refusal nothing is kept, not even the instance."""
        from fedsx.models import Activity
        from flows import store

        input = {"actor": actor.ap_id, "target": followed.ap_id}
        if timeout is not None:
            input["timeout"] = timeout
        with transaction.atomic():
            pk, outcome = store.start("follow", input)
            if outcome.status != "suspended":
                transaction.set_rollback(True)
                detail = outcome.detail.split(": ", 1)[-1] if outcome.detail else outcome.status
                self.fail(outcome.error or "not_sent", f"the Follow was not sent: {detail}")
            sent = store.instances().get(pk=pk).log.get(kind="step").value
            return pk, Activity.objects.get(ap_id=sent)
