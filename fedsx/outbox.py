"""Posting: a local actor's activity becomes an Activity, an OutboxEntry and one Delivery
per target inbox, in one transaction with the caller (the transactional outbox).

``post(actor, activity_or_object)`` mints the ids, wraps a bare object in a ``Create`` the
way Mastodon does, appends the activity to local recipients' inboxes straight away (their
triggers fire; no HTTP to ourselves) and records a Delivery for every remote inbox. The
deliveries are handed to the workers after the commit: a rolled-back caller sends nothing
(invariant 8), and a committed post is delivered or its Delivery says why not (invariant 7).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from django.db import connection, transaction
from django.db.models import Q

from . import jobs, proofs
from .cid import CanonicalizationError, activity_cid
from .conf import fedsx_settings
from .errors import FederationError
from .kernel import append_inbox
from .media import AS_CONTEXT
from .models import Activity, Actor, Delivery, Follow, OutboxEntry, host_of
from .projections import update_outbound_projections
from .vocab import (
    ADDRESS_FIELDS,
    BLIND_FIELDS,
    PUBLIC_ALIASES,
    as_list,
    id_of,
    ids_in,
    is_public,
)

DELIVERIES = "deliveries"  # the jobs layer's kind (fedsx/delivery.py registers it)
MAX_ID_LENGTH = 500  # Activity.ap_id, object_id, Delivery.inbox_url

# ActivityStreams 2.0 activity types (and the common extensions peers send). Anything else
# posted is an object, wrapped in a Create. Question is an activity in the vocabulary, but
# every server treats a poll as an object that is Created, so it is one here too.
ACTIVITY_TYPES = frozenset(
    {
        "Accept", "Add", "Announce", "Arrive", "Block", "Create", "Delete", "Dislike",
        "EmojiReact", "Flag", "Follow", "Ignore", "Invite", "Join", "Leave", "Like",
        "Listen", "Move", "Offer", "Read", "Reject", "Remove", "TentativeAccept",
        "TentativeReject", "Travel", "Undo", "Update", "View",
    }
)  # fmt: skip
# Activities that change or withdraw an earlier one about the same object: each waits, per
# inbox, until the earlier delivery about that object is settled.
AMENDING_TYPES = frozenset({"Undo", "Delete", "Update"})


def refused(code: str, detail: str) -> FederationError:
    return FederationError(400, code, detail)


def post(actor: Actor | str, activity_or_object: dict[str, Any]) -> Activity:
    """Post as the local ``actor`` (an Actor, a local username or id); returns the stored
    Activity. Raises FederationError (400, a stable code) and stores nothing for what the
    inbox would refuse, and for an unknown or remote actor."""
    sender = _local_actor(actor)
    activity = mint(sender, activity_or_object)
    audience = audience_of(sender, activity)  # may fetch unknown remote actors: before we lock
    delivered = with_proof(sender, without_blind_fields(activity))
    record = _record(delivered)
    with transaction.atomic():
        record.save(force_insert=True)
        OutboxEntry.objects.create(
            actor=sender, activity=record, seq=_next_outbox_seq(sender), public=is_public(delivered)
        )
        if audience.local:
            append_inbox(delivered, audience.local, cid=record.activity_cid)
        update_outbound_projections(sender, delivered)
        ids = _create_deliveries(sender, record, audience)
        if ids:
            jobs.after_commit(DELIVERIES, ids, using=connection.alias)
    return record


# ── minting ────────────────────────────────────────────────────────────────────────────


def _local_actor(actor: Actor | str) -> Actor:
    if isinstance(actor, Actor):
        if not actor.is_local:
            raise refused("not_local", f"{actor.ap_id} is not a local actor: only those post")
        found = actor
    else:
        is_url = actor.startswith(("https://", "http://"))
        lookup = {"ap_id": actor} if is_url else {"username": actor}
        found = Actor.objects.filter(is_local=True, **lookup).first()
        if found is None:
            raise refused("unknown_actor", f"no local actor named {actor!r}")
    if found.is_instance:
        # Its key signs the node's fetches; what it would post nobody follows it to see.
        raise refused("instance_actor", f"{found.ap_id} is the node itself: it posts nothing")
    return found


def mint(sender: Actor, given: dict[str, Any]) -> dict[str, Any]:
    """The activity as it will be stored: ids minted, actor and published set, a bare
    object wrapped in a Create. Refuses what no peer would take."""
    if not isinstance(given, dict):
        raise refused("not_an_object", "an activity or object is a JSON object")
    kind = given.get("type")
    if not isinstance(kind, str) or not kind or len(kind) > 64:
        raise refused("missing_type", "an activity or object needs a type (a short string)")
    if "id" in given:
        raise refused("id_given", "the outbox mints ids: leave 'id' out")
    _check_author(given, "actor", sender)
    now = _published()
    activity = {**given} if kind in ACTIVITY_TYPES else _create_of(sender, given, now)
    activity.setdefault("@context", AS_CONTEXT)
    activity["id"] = f"{sender.ap_id}/activities/{uuid.uuid4()}"
    activity["actor"] = sender.ap_id
    activity.setdefault("published", now)
    _check_fits(activity)
    return activity


def _create_of(sender: Actor, obj: dict[str, Any], now: str) -> dict[str, Any]:
    """Wrap a bare object as Mastodon does: the object gets its own id, attributedTo and
    published, and the Create carries the object's addressing."""
    _check_author(obj, "attributedTo", sender)
    inner = {key: value for key, value in obj.items() if key != "@context"}
    inner["id"] = f"{sender.ap_id}/objects/{uuid.uuid4()}"
    inner["attributedTo"] = sender.ap_id
    inner.setdefault("published", now)
    create: dict[str, Any] = {"@context": obj.get("@context", AS_CONTEXT), "type": "Create"}
    for name in ADDRESS_FIELDS:
        if name in inner:
            create[name] = inner[name]
    create["object"] = inner
    create["published"] = inner["published"]
    return create


def _check_author(obj: dict[str, Any], name: str, sender: Actor) -> None:
    if name in obj and id_of(obj[name]) != sender.ap_id:
        raise refused("wrong_actor", f"{name} must be the posting actor ({sender.ap_id})")


def _published() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _check_fits(activity: dict[str, Any]) -> None:
    for ref in (id_of(activity), id_of(activity.get("object"))):
        if len(ref) > MAX_ID_LENGTH:
            raise refused("id_too_long", f"ids are at most {MAX_ID_LENGTH} characters")
    try:
        encoded = orjson.dumps(activity)
    except TypeError as exc:
        raise refused("not_canonical", f"the activity is not JSON: {exc}") from None
    if b"\\u0000" in encoded:  # as the inbox: no database stores a NUL in text
        raise refused("unsupported_content", "strings may not contain U+0000")
    size = len(encoded)
    if size > fedsx_settings.MAX_BODY_BYTES:
        raise refused("too_large", f"the activity is larger than {fedsx_settings.MAX_BODY_BYTES}")


def _record(activity: dict[str, Any]) -> Activity:
    try:
        cid = activity_cid(activity)
    except CanonicalizationError as exc:
        raise refused("not_canonical", f"the activity has no canonical JSON form: {exc}") from None
    return Activity(
        ap_id=activity["id"],
        activity_cid=cid,
        type=activity["type"],
        actor=activity["actor"],
        object_id=id_of(activity.get("object"))[:MAX_ID_LENGTH],
        payload=activity,
    )


def without_blind_fields(activity: dict[str, Any]) -> dict[str, Any]:
    """What is stored and delivered: bto and bcc address, they are never shown."""
    out = {key: value for key, value in activity.items() if key not in BLIND_FIELDS}
    inner = out.get("object")
    if isinstance(inner, dict) and any(name in inner for name in BLIND_FIELDS):
        out["object"] = {key: value for key, value in inner.items() if key not in BLIND_FIELDS}
    return out


def with_proof(sender: Actor, activity: dict[str, Any]) -> dict[str, Any]:
    """The activity with the sender's Object Integrity Proof (FEP-8b32, eddsa-jcs-2022).

    Made over exactly what is stored, served and delivered (after bto/bcc are stripped), so
    a copy forwarded by anyone still proves its author. The proof's terms are defined by
    data-integrity/v1, added to the activity's @context as Mitra and Fedify add it.
    """
    if not sender.ed25519_private_key:  # every local actor gets one (migration 0009)
        raise refused("no_proof_key", f"{sender.ap_id} has no Ed25519 key to sign with")
    context = activity.get("@context", AS_CONTEXT)
    contexts = as_list(context)
    if proofs.DATA_INTEGRITY_CONTEXT not in contexts:
        activity = {**activity, "@context": [*contexts, proofs.DATA_INTEGRITY_CONTEXT]}
    try:
        key = proofs.decode_secret_key(sender.ed25519_private_key)
    except proofs.ProofError as exc:  # a corrupt stored key: the operator's to repair
        raise refused("no_proof_key", f"{sender.ap_id}'s Ed25519 key: {exc.detail}") from None
    try:
        return proofs.sign(activity, key, sender.multikey_id)
    except proofs.ProofError as exc:  # no canonical JSON form (a NaN, a lone surrogate, …)
        raise refused("not_canonical", exc.detail) from None


def _next_outbox_seq(actor: Actor) -> int:
    # The row lock serialises posts by one actor: its outbox sequence has no gaps.
    table = Actor._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET outbox_seq = outbox_seq + 1 WHERE id = %s RETURNING outbox_seq",  # noqa: S608
            [actor.pk],
        )
        return cursor.fetchone()[0]


# ── recipients ─────────────────────────────────────────────────────────────────────────


@dataclass
class Audience:
    """Who an activity goes to: local actors (an inbox entry each) and remote inboxes."""

    local: list[Actor] = field(default_factory=list)
    # target inbox URL → the remote actor behind it when it is that actor's own inbox
    inboxes: dict[str, Actor | None] = field(default_factory=dict)
    # addressed ids that could not be resolved to an inbox → why
    unresolved: dict[str, str] = field(default_factory=dict)


def audience_of(sender: Actor, activity: dict[str, Any]) -> Audience:
    """Expand the addressing: the sender's followers collection to its accepted followers,
    other ids to actors (unknown remote ones fetched); the public collection and the
    sender itself are nobody's inbox. A remote actor's shared inbox is used when it has
    one (as Mastodon groups them), so many followers on one server cost one POST."""
    addressed = []
    for name in ADDRESS_FIELDS:
        for ref in ids_in(activity.get(name)):
            if ref not in addressed and ref not in PUBLIC_ALIASES and ref != sender.ap_id:
                addressed.append(ref)
    audience = Audience()
    actors: dict[int, Actor] = {}
    if sender.followers_url in addressed:
        addressed.remove(sender.followers_url)
        for follower in _accepted_followers(sender):
            actors[follower.pk] = follower
    for ref in addressed:
        actor = _actor_for(ref, audience)
        if actor is not None:
            actors[actor.pk] = actor
    _add_targets(audience, actors.values())
    return audience


def _accepted_followers(sender: Actor):
    return (
        Actor.objects.filter(
            following_set__following=sender, following_set__state=Follow.State.ACCEPTED
        )
        .only("id", "ap_id", "is_local", "inbox_url", "shared_inbox_url", "gone_at")
        .order_by()
        .iterator(chunk_size=2000)
    )


def _actor_for(ref: str, audience: Audience) -> Actor | None:
    from .resolve import ResolveError, actor_by_id  # network: only for unknown actors

    known = Actor.objects.filter(ap_id=ref).first()
    if known is not None:
        return known
    local_base = f"{fedsx_settings.BASE_URL}/"
    if ref.startswith(local_base):
        audience.unresolved[ref] = "no local actor has this id"
        return None
    try:
        return actor_by_id(ref)
    except ResolveError as exc:
        audience.unresolved[ref] = f"{exc.code}: {exc.detail}"
    except Exception as exc:  # a FetchError or a bad document: the Delivery says why
        audience.unresolved[ref] = f"{getattr(exc, 'code', type(exc).__name__)}: {exc}"
    return None


def _add_targets(audience: Audience, actors) -> None:
    shared_users: dict[str, int] = {}
    for actor in actors:
        if actor.is_local:
            audience.local.append(actor)
            continue
        if actor.gone_at is not None:
            audience.unresolved[actor.ap_id] = "the actor is gone (its inbox answered 410)"
            continue
        inbox = actor.shared_inbox_url or actor.inbox_url
        if not inbox:
            audience.unresolved[actor.ap_id] = "the actor has no inbox"
            continue
        if inbox in audience.inboxes or inbox in shared_users:
            audience.inboxes[inbox] = None  # serves several actors: not one's personal inbox
            continue
        personal = not actor.shared_inbox_url
        audience.inboxes[inbox] = actor if personal else None
        if not personal:
            shared_users[inbox] = 1


# ── deliveries ─────────────────────────────────────────────────────────────────────────


def subject_of(activity: dict[str, Any]) -> str:
    """What the activity is about, for ordering amendments: its object's id."""
    return id_of(activity.get("object"))[:MAX_ID_LENGTH]


def _create_deliveries(sender: Actor, record: Activity, audience: Audience) -> list[int]:
    subject = subject_of(record.payload)
    earlier = _unsettled_about(sender, record, audience) if subject else {}
    rows = [
        Delivery(
            activity=record,
            sender=sender,
            inbox_url=inbox,
            host=host_of(inbox),
            recipient=recipient,
            subject=subject,
            waits_for_id=earlier.get(inbox),
        )
        for inbox, recipient in audience.inboxes.items()
        if len(inbox) <= MAX_ID_LENGTH
    ]
    rows += [
        Delivery(
            activity=record,
            sender=sender,
            inbox_url=ref[:MAX_ID_LENGTH],
            host=host_of(ref),
            subject=subject,
            status=Delivery.Status.FAILED,
            last_error=f"no inbox to deliver to: {why}"[:500],
        )
        for ref, why in audience.unresolved.items()
    ]
    created = Delivery.objects.bulk_create(rows, batch_size=1000)
    if created and created[0].pk is None:  # a backend that does not return ids
        created = list(Delivery.objects.filter(activity=record))
    return [row.pk for row in created if row.status == Delivery.Status.PENDING]


def _unsettled_about(sender: Actor, record: Activity, audience: Audience) -> dict[str, int]:
    """For an Undo, Delete or Update: per inbox, the latest earlier delivery about the same
    object (or of the undone activity itself) not yet settled."""
    if record.type not in AMENDING_TYPES or not audience.inboxes:
        return {}
    target = subject_of(record.payload)
    pending = (
        Delivery.objects.filter(
            sender=sender,
            inbox_url__in=list(audience.inboxes),
            status__in=[Delivery.Status.PENDING, Delivery.Status.HELD],
        )
        .filter(Q(subject=target) | Q(activity__ap_id=target))
        .order_by("id")
        .values_list("inbox_url", "id")
    )
    return dict(pending)  # the latest per inbox wins: it waits for those before it
