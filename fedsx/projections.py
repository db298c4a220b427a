"""Projections: what an appended activity changes in the kernel's own tables.

Run in the append's transaction, once per new activity: Follow, Accept, Reject and Undo
keep the ``Follow`` rows (who follows whom, pending or accepted); an actor's self-Delete
drops its key and its follows.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q
from django.utils import timezone

from . import keys
from .models import Actor, Follow
from .vocab import id_of


def update_projections(activity: dict[str, Any]) -> None:
    kind = activity.get("type")
    handler = PROJECTIONS.get(kind if isinstance(kind, str) else "")
    if handler is not None:
        handler(activity)


def _follow(activity: dict[str, Any]) -> None:
    """A pending follow of a local actor (the follower row exists: it signed the request)."""
    follower_id, followed_id = id_of(activity.get("actor")), id_of(activity.get("object"))
    ids = dict(
        Actor.objects.filter(
            Q(ap_id=follower_id) | Q(ap_id=followed_id, is_local=True)
        ).values_list("ap_id", "id")
    )
    if follower_id not in ids or followed_id not in ids or follower_id == followed_id:
        return
    now = timezone.now()
    # One upsert: a repeated Follow (a new id for the same pair) keeps the follow's state.
    Follow.objects.bulk_create(
        [
            Follow(
                follower_id=ids[follower_id],
                following_id=ids[followed_id],
                state=Follow.State.PENDING,
                follow_activity_id=id_of(activity)[:500],
                created_at=now,
                updated_at=now,
            )
        ],
        update_conflicts=True,
        unique_fields=["follower", "following"],
        update_fields=["follow_activity_id", "updated_at"],
    )


def _follows_named_by(follow: Any, follower_id: str) -> Any:
    """The Follow rows an Accept/Reject/Undo refers to, by the Follow's id or its parts."""
    query = Q(pk__in=[])
    if follow_id := id_of(follow):
        query |= Q(follow_activity_id=follow_id)
    if isinstance(follow, dict) and follow.get("type") == "Follow":
        query |= Q(
            follower__ap_id=id_of(follow.get("actor")) or follower_id,
            following__ap_id=id_of(follow.get("object")),
        )
    return Follow.objects.filter(query)


def _undo(activity: dict[str, Any]) -> None:
    sender = id_of(activity.get("actor"))
    inner = activity.get("object")
    if isinstance(inner, dict) and inner.get("type") not in (None, "Follow"):
        return
    _follows_named_by(inner, sender).filter(follower__ap_id=sender).delete()


def _accept(activity: dict[str, Any]) -> None:
    # A remote actor accepts a follow by one of ours: the follow's object is the sender.
    sender = id_of(activity.get("actor"))
    inner = activity.get("object")
    _follows_named_by(inner, "").filter(following__ap_id=sender, follower__is_local=True).update(
        state=Follow.State.ACCEPTED
    )


def _reject(activity: dict[str, Any]) -> None:
    # Our own follow refused is kept, marked, for the operator; another's goes.
    sender = id_of(activity.get("actor"))
    follows = _follows_named_by(activity.get("object"), "").filter(following__ap_id=sender)
    follows.filter(follower__is_local=True).update(state=Follow.State.REJECTED)
    follows.filter(follower__is_local=False).delete()


def _delete(activity: dict[str, Any]) -> None:
    sender = id_of(activity.get("actor"))
    if sender and id_of(activity.get("object")) == sender:  # an actor deleting itself
        keys.drop_key_of(sender)
        Follow.objects.filter(Q(follower__ap_id=sender) | Q(following__ap_id=sender)).delete()


PROJECTIONS = {
    "Follow": _follow,
    "Undo": _undo,
    "Accept": _accept,
    "Reject": _reject,
    "Delete": _delete,
}


# ── what a local actor posts ───────────────────────────────────────────────────────


def update_outbound_projections(sender: Actor, activity: dict[str, Any]) -> None:
    """The same tables, for an activity a local actor posts through the outbox."""
    kind = activity.get("type")
    handler = OUTBOUND_PROJECTIONS.get(kind if isinstance(kind, str) else "")
    if handler is not None:
        handler(sender, activity)


def _our_follow(sender: Actor, activity: dict[str, Any]) -> None:
    """Our follow of a known actor is pending until its Accept or Reject arrives; a new
    Follow of the same actor starts over (pending, with the new id)."""
    followed = Actor.objects.filter(ap_id=id_of(activity.get("object"))).first()
    if followed is None or followed.pk == sender.pk:
        return
    now = timezone.now()
    Follow.objects.bulk_create(
        [
            Follow(
                follower=sender,
                following=followed,
                state=Follow.State.PENDING,
                follow_activity_id=id_of(activity)[:500],
                created_at=now,
                updated_at=now,
            )
        ],
        update_conflicts=True,
        unique_fields=["follower", "following"],
        update_fields=["state", "follow_activity_id", "updated_at"],
    )


def _our_accept(sender: Actor, activity: dict[str, Any]) -> None:
    _follows_named_by(activity.get("object"), "").filter(following=sender).update(
        state=Follow.State.ACCEPTED, updated_at=timezone.now()
    )


def _our_reject(sender: Actor, activity: dict[str, Any]) -> None:
    _follows_named_by(activity.get("object"), "").filter(following=sender).delete()


def _our_undo(sender: Actor, activity: dict[str, Any]) -> None:
    inner = activity.get("object")
    if isinstance(inner, dict) and inner.get("type") not in (None, "Follow"):
        return
    _follows_named_by(inner, sender.ap_id).filter(follower=sender).delete()


OUTBOUND_PROJECTIONS = {
    "Follow": _our_follow,
    "Accept": _our_accept,
    "Reject": _our_reject,
    "Undo": _our_undo,
}
