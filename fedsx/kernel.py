"""The kernel append: a verified activity becomes one Activity row and one InboxEntry per
local recipient, with the projections it implies, in one transaction.

Appending is idempotent: a repeat delivery finds the stored activity and its entries and
adds nothing. Triggers are not run here: each append that created entries sends
``fedsx.signals.inbox_appended`` once, and the triggers app defers its work to after the
commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
import psycopg
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from . import metrics
from .cid import activity_cid
from .conf import fedsx_settings
from .models import Activity, Actor, Follow, InboxEntry, instance_actor_id, local_actor_id
from .projections import PROJECTIONS, update_projections
from .signals import inbox_appended
from .vocab import addressed_ids, as_list, id_of, ids_in

FOLLOWING = Follow.State.ACCEPTED.value  # the follows whose followers get the activity


@dataclass(frozen=True)
class AppendResult:
    activity: Activity
    entries: list[InboxEntry]  # the entries this append created (empty for a repeat)
    created: bool  # whether the activity itself was new


def shared_inbox_recipients(activity: dict[str, Any]) -> list[Actor]:
    """Local actors an activity posted to the shared inbox is for: those addressed directly
    or concerned (``concerned_local_ids``), the local actors an Undo's undone activity
    reached (``undone_ids``), and the sender's local followers when its followers
    collection is addressed.

    The ORM form, for SQLite and the projections' path; on Postgres the append statement
    finds the same actors itself (``SHARED_INBOX_RECIPIENTS``).
    """
    addressed = addressed_ids(activity)
    sender_id = id_of(activity.get("actor"))
    local = Actor.objects.filter(is_local=True).only("id", "ap_id").order_by()
    query = local.filter(ap_id__in=addressed | concerned_local_ids(activity))
    sender = Actor.objects.filter(ap_id=sender_id).only("ap_id", "followers_url").order_by().first()
    if sender is not None and followers_collection(sender) in addressed:
        query = query.union(
            local.filter(following_set__following=sender, following_set__state=FOLLOWING)
        )
    if undone := undone_ids(activity):
        query = query.union(
            local.filter(
                inbox_entries__activity__ap_id__in=undone,
                inbox_entries__activity__actor=sender_id,
            )
        )
    return list(query)


def concerned_local_ids(activity: dict[str, Any]) -> set[str]:
    """The local actor ids an activity is about, whatever its addressing says.

    This is the one place the rule lives (the ORM form and the Postgres statement both take
    its result). An activity concerns the local actor L when

    * its ``object`` (each one, when a list) is L or something of L's: a Follow, Block or
      Flag of L; a Like, Announce or EmojiReact of L's object; an Accept, Reject or Undo
      of L's activity;
    * its ``inReplyTo`` is something of L's;
    * a ``Mention`` in its ``tag`` has L as ``href``;
    * its ``object`` is embedded and that object is L's or about L, one level down: its
      ``actor`` or ``attributedTo`` is L (an Accept of L's Follow, embedded; an Announce of
      L's note, embedded), its own ``object`` is L or L's (an Undo of a Follow of L, of a
      Like of L's note), it is ``inReplyTo`` something of L's or mentions L (the Create of
      a reply or a mention).

    "Something of L's" is an id under L's id, which is how this node mints them
    (``<L>/activities/<uuid>``, ``<L>/objects/<uuid>``: fedsx.outbox; and L's collections;
    the instance actor's are under ``<BASE_URL>/actor``).
    Local ids are all under BASE_URL, so they are recognised by their prefix alone, with
    no query: what is returned are candidate ids, which the append matches against local
    actors (a name that is no local actor reaches no one). Ids elsewhere are ignored:
    nothing that is not under BASE_URL can be L's.

    An Undo naming only the id of the sender's own earlier activity (Mastodon's Undo of a
    Like) says nothing about L itself: ``undone_ids``' case, it reaches the local actors
    the activity it undoes reached.
    """
    refs: list[str] = []
    _collect_refs(activity, refs)
    for inner in as_list(activity.get("object")):
        if not isinstance(inner, dict):
            continue
        refs.extend(ids_in(inner.get("actor")))
        refs.extend(ids_in(inner.get("attributedTo")))
        _collect_refs(inner, refs)
    base = fedsx_settings.BASE_URL
    # Most refs are remote: one prefix test each before anything else is looked at.
    return {owner for ref in refs if ref.startswith(base) and (owner := _local_owner(ref, base))}


def _collect_refs(obj: dict[str, Any], refs: list[str]) -> None:
    # The fields of one activity or object that say what it is about.
    refs.extend(ids_in(obj.get("object")))
    refs.extend(ids_in(obj.get("inReplyTo")))
    tags = obj.get("tag")
    for tag in as_list(tags):
        if isinstance(tag, dict) and tag.get("type") == "Mention":
            refs.extend(ids_in(tag.get("href")))


def _local_owner(ref: str, base: str) -> str:
    """The id of the local actor ``ref`` (an id under ``base``) is or is under, or ''."""
    users = f"{base}/actors/"
    if ref.startswith(users):
        name = ref[len(users) :].split("/", 1)[0].split("#", 1)[0].split("?", 1)[0]
        return local_actor_id(name) if name else ""
    instance = instance_actor_id()
    if ref == instance or ref.startswith((f"{instance}/", f"{instance}#")):
        return instance
    return ""


def undone_ids(activity: dict[str, Any]) -> list[str]:
    """The ids an Undo names as its object: the activities the same sender delivered before,
    whose recipients the Undo reaches too. Empty for any other type, so the common path
    never looks them up."""
    if activity.get("type") != "Undo":
        return []
    return ids_in(activity.get("object"))


def followers_collection(actor: Actor) -> str:
    return actor.followers_url or f"{actor.ap_id}/followers"


@metrics.timed_append
def append_inbox(
    activity: dict[str, Any],
    recipients: list[Actor] | None,
    *,
    cid: str | None = None,
    forwarded_by: str = "",
) -> AppendResult:
    """Store ``activity`` once and append it to each recipient's inbox log.

    ``recipients`` None means the shared inbox's: the local actors the activity's addressing
    names (``shared_inbox_recipients``). ``cid`` is the activity's content id when the
    caller has computed it already. ``forwarded_by``: the actor that delivered it for its
    actor (fedsx.forwarded).
    """
    record = _activity_record(activity, cid)
    if forwarded_by:  # plain deliveries leave the column to its default
        record.forwarded_by = forwarded_by[:500]
    # Forwarded activities are rare: they take the ORM path, so the one statement (and its
    # prepared plan) stays that of every plain delivery, the column left to its default.
    on_postgres = connection.vendor == "postgresql" and not forwarded_by
    if on_postgres and activity.get("type") not in PROJECTIONS and not connection.in_atomic_block:
        # The common case, one statement in its own transaction: a single round trip.
        result = _try_one_statement(record, recipients)
        if result is not None:
            return _announced(result)
    with transaction.atomic():
        result = None
        if on_postgres:
            result = _try_one_statement(record, recipients)
        if result is None:
            if recipients is None:
                recipients = shared_inbox_recipients(activity)
            result = _append_with_orm(record, recipients)
        if result.created:
            update_projections(activity)
        return _announced(result)


def _announced(result: AppendResult) -> AppendResult:
    if result.entries:
        inbox_appended.send(sender=InboxEntry, entries=result.entries, using=connection.alias)
    return result


def _activity_record(activity: dict[str, Any], cid: str | None) -> Activity:
    return Activity(
        ap_id=id_of(activity) or None,
        activity_cid=cid or activity_cid(activity),
        type=str(activity.get("type"))[:64],
        actor=id_of(activity.get("actor"))[:500],
        object_id=id_of(activity.get("object"))[:500],
        payload=activity,
        received_at=timezone.now(),
    )


def _append_with_orm(record: Activity, recipients: list[Actor]) -> AppendResult:
    # Appends lock the recipients' rows; a fixed order means two fan-outs cannot deadlock.
    recipients = sorted(recipients, key=lambda actor: actor.pk)
    stored, created = _upsert_activity(record)
    have = set()
    if not created:
        have = set(InboxEntry.objects.filter(activity=stored).values_list("actor_id", flat=True))
    entries = [_append_entry(actor, stored) for actor in recipients if actor.pk not in have]
    return AppendResult(stored, [entry for entry in entries if entry], created)


def _upsert_activity(record: Activity) -> tuple[Activity, bool]:
    lookup = (
        {"ap_id": record.ap_id, "actor": record.actor}
        if record.ap_id
        else {"activity_cid": record.activity_cid}
    )
    existing = Activity.objects.filter(**lookup).first()
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            record.save(force_insert=True)
            return record, True
    except IntegrityError:
        # A concurrent delivery of the same activity committed first (the unique index
        # made us wait for it), or another id carries the very same content.
        record.pk = None
        return Activity.objects.get(Q(**lookup) | Q(activity_cid=record.activity_cid)), False


def _next_inbox_seq(actor: Actor) -> int | None:
    # One statement that increments and reads: the row lock serialises concurrent appends
    # to one actor's log, so its sequence has no gaps and no duplicates.
    table = Actor._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET inbox_seq = inbox_seq + 1 WHERE id = %s RETURNING inbox_seq",  # noqa: S608
            [actor.pk],
        )
        row = cursor.fetchone()
    return row[0] if row else None


def _append_entry(actor: Actor, activity: Activity) -> InboxEntry | None:
    seq = _next_inbox_seq(actor)
    if seq is None:  # the actor was deleted since it was looked up
        return None
    entry = InboxEntry(actor=actor, activity=activity, seq=seq)
    entry.save(force_insert=True)
    return entry


# The whole append as one Postgres statement: insert the activity unless it is known, pick
# the recipients that lack an entry, take their next sequence numbers and insert the
# entries. The sequence UPDATE's row lock serialises appends to one actor, so its sequence
# has no gaps. That lock (FOR NO KEY UPDATE) lets foreign-key checks of rows referencing
# the actor (FOR KEY SHARE: firings, entries) through; an explicit FOR UPDATE in id order,
# tried before, did not, and deadlocked with the triggers' transactions. Without it two
# fan-outs to overlapping recipients may lock them in different orders: the rare deadlock
# between them is retried (``_try_one_statement``).
#
# Every part sees the statement's snapshot, so an activity committed by a concurrent
# delivery after it began is seen by none: the statement then returns no row and the
# caller takes the ORM path, whose fresh queries see it.
#
# The recipients come as a JSON array, not a bigint[]: unnest() of an array made Postgres
# plan the statement afresh on every execution (its estimate from a known array made each
# custom plan look cheaper than the generic one), and planning cost as much as running it.
# jsonb_array_elements_text has one fixed estimate, so the generic plan is kept: 0.87 ms
# against 0.44 ms a statement for two recipients, measured here.
APPEND_SQL = """
WITH new_activity AS (
    INSERT INTO fedsx_activity (ap_id, activity_cid, type, actor, object_id, payload, received_at)
    VALUES (%(ap_id)s, %(cid)s, %(type)s, %(actor)s, %(object_id)s, %(payload)s::jsonb, %(now)s)
    ON CONFLICT DO NOTHING
    RETURNING id
), activity AS (
    SELECT id, true AS created FROM new_activity
    UNION ALL
    (SELECT id, false FROM fedsx_activity WHERE {lookup})
    LIMIT 1
), missing AS (
    SELECT r.actor_id FROM ({recipients}) AS r, activity a
    WHERE a.created OR NOT EXISTS (
        SELECT 1 FROM fedsx_inboxentry e WHERE e.actor_id = r.actor_id AND e.activity_id = a.id)
), seq AS (
    UPDATE fedsx_actor SET inbox_seq = inbox_seq + 1 WHERE id IN (SELECT actor_id FROM missing)
    RETURNING id, inbox_seq
), entries AS (
    INSERT INTO fedsx_inboxentry (actor_id, activity_id, seq, created_at)
    SELECT seq.id, a.id, seq.inbox_seq, %(now)s FROM seq CROSS JOIN activity a
    RETURNING id, actor_id, seq
)
SELECT a.id, a.created, e.id, e.actor_id, e.seq FROM activity a LEFT JOIN entries e ON true
"""

# Who the activity is for. Listed: the per-actor inbox's one actor.
LISTED_RECIPIENTS = """
SELECT value::bigint AS actor_id FROM jsonb_array_elements_text(%(recipients)s::jsonb)
"""
# The shared inbox's: local actors addressed or concerned (%(local)s: addressed_ids and
# concerned_local_ids), and the sender's local followers when its followers collection is
# addressed (shared_inbox_recipients, the ORM form). Found here rather than by the view, it
# costs no round trip and no ORM query of its own: the shared inbox, where most servers
# deliver, took three times the per-actor inbox's time before.
SHARED_INBOX_RECIPIENTS = """
SELECT local.id AS actor_id FROM fedsx_actor local
WHERE local.is_local
  AND local.ap_id IN (SELECT jsonb_array_elements_text(%(local)s::jsonb))
UNION
SELECT follow.follower_id FROM fedsx_actor sender
JOIN fedsx_follow follow ON follow.following_id = sender.id AND follow.state = %(following)s
JOIN fedsx_actor local ON local.id = follow.follower_id AND local.is_local
WHERE sender.ap_id = %(actor)s
  AND COALESCE(NULLIF(sender.followers_url, ''), sender.ap_id || '/followers')
      IN (SELECT jsonb_array_elements_text(%(addressed)s::jsonb))
"""
# An Undo's, besides: the local actors that the activities it names reached (undone_ids).
# A statement of its own, so that every other activity's keeps its plan and its cost.
UNDO_RECIPIENTS = (
    SHARED_INBOX_RECIPIENTS
    + """UNION
SELECT earlier.actor_id FROM fedsx_activity undone
JOIN fedsx_inboxentry earlier ON earlier.activity_id = undone.id
WHERE undone.actor = %(actor)s
  AND undone.ap_id IN (SELECT jsonb_array_elements_text(%(undone)s::jsonb))
"""
)

# Django turns psycopg's statement preparation off (prepare_threshold=None, for connection
# poolers), and psycopg then ignores ``prepare=True`` too. A threshold no query reaches
# turns explicit preparation back on without making psycopg prepare anything else, unless
# the host's DATABASES OPTIONS set prepare_threshold to None itself (behind PgBouncer in
# transaction mode): then nothing is prepared.
ONLY_EXPLICIT_PREPARE = 2**31 - 1


def _allow_explicit_prepare(raw: psycopg.Connection) -> None:
    options = connection.settings_dict.get("OPTIONS", {})
    if raw.prepare_threshold is None and "prepare_threshold" not in options:
        raw.prepare_threshold = ONLY_EXPLICIT_PREPARE


# Failures of the statement that a second attempt gets past: a deadlock victim, and a
# prepared statement whose cached plan a schema change invalidated ("cached plan must not
# change result type"; psycopg would otherwise keep reusing it until the connection closes).
RETRIED_ERRORS = (psycopg.errors.DeadlockDetected, psycopg.errors.FeatureNotSupported)
ATTEMPTS = 3


def _try_one_statement(record: Activity, recipients: list[Actor] | None) -> AppendResult | None:
    """The one-statement append, or None when the ORM path must decide (a concurrent
    delivery of the same activity won a race this statement's snapshot could not see)."""
    attempt = 1
    while True:
        try:
            if not connection.in_atomic_block:
                return _append_in_one_statement(record, recipients)
            # In a transaction, a savepoint: the failed statement must be rolled back to it,
            # or the whole transaction is aborted and the ORM path cannot go on.
            with transaction.atomic():
                return _append_in_one_statement(record, recipients)
        except IntegrityError:
            record.pk = None
            return None
        except DatabaseError as exc:
            if attempt == ATTEMPTS or not isinstance(exc.__cause__, RETRIED_ERRORS):
                raise
            attempt += 1
            record.pk = None
            if isinstance(exc.__cause__, psycopg.errors.FeatureNotSupported):
                _deallocate_prepared()


def _deallocate_prepared() -> None:
    # psycopg forgets its own prepared statements when it sees DEALLOCATE ALL go through.
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute("DEALLOCATE ALL")


def _append_in_one_statement(
    record: Activity, recipients: list[Actor] | None
) -> AppendResult | None:
    # An activity is known by its id from this sender, or, without an id, by its content.
    lookup = "ap_id = %(ap_id)s AND actor = %(actor)s" if record.ap_id else "activity_cid = %(cid)s"
    if recipients is None:
        addressed = addressed_ids(record.payload)
        targets = {
            "local": orjson.dumps(sorted(addressed | concerned_local_ids(record.payload))).decode(),
            "addressed": orjson.dumps(sorted(addressed)).decode(),
            "following": FOLLOWING,
        }
        addressing = SHARED_INBOX_RECIPIENTS
        if undone := undone_ids(record.payload):
            addressing = UNDO_RECIPIENTS
            targets["undone"] = orjson.dumps(undone).decode()
    else:
        addressing = LISTED_RECIPIENTS
        targets = {"recipients": orjson.dumps([actor.pk for actor in recipients]).decode()}
    connection.ensure_connection()
    # A server-side prepared statement on the raw connection: planning this statement
    # cost more than running it. Django's error wrapper still applies: a broken connection
    # is marked and replaced.
    _allow_explicit_prepare(connection.connection)
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(
            APPEND_SQL.format(lookup=lookup, recipients=addressing),
            prepare=True,
            params={
                "ap_id": record.ap_id,
                "cid": record.activity_cid,
                "type": record.type,
                "actor": record.actor,
                "object_id": record.object_id,
                "payload": orjson.dumps(record.payload).decode(),
                "now": record.received_at,
                **targets,
            },
        )
        rows = cursor.fetchall()
    if not rows:
        return None
    record.pk, created = rows[0][0], rows[0][1]
    record._state.adding = False
    known = {actor.pk: actor for actor in recipients or []}
    entries = [
        InboxEntry(
            id=entry_id,
            actor_id=actor_id,
            activity=record,
            seq=seq,
            created_at=record.received_at,
        )
        for _, _, entry_id, actor_id, seq in rows
        if entry_id is not None
    ]
    for entry in entries:
        entry._state.adding = False
        if entry.actor_id in known:
            entry.actor = known[entry.actor_id]
    return AppendResult(record, entries, created)
