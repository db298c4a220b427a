"""Delivering posted activities: claim due deliveries, sign, POST, classify, record.

``deliver(ids)`` is the whole of it, run by the ``fedsx.deliver`` task (a worker) or in a
background thread of the serving process (the embedded node). A batch is claimed in one
transaction (a lease in ``claimed_until``: a killed worker's claims run out and the
sweeper hands them out again), then sent from a thread pool so that a slow host never
stalls the others, at most ``DELIVERY_HOST_CONCURRENCY`` at once per host. Results are
written by the calling thread as they come in (the pool threads do only network work):
each failure at once, on its own, the 2xx answers in groups (``Results``); the
deliveries that waited for the batch's settled ones are released once, at its end.

What each answer means, and when to try again, is ``fedsx.retry``'s business; host health
is ``fedsx.hosts``'. Delivery is at least once: a receiver deduplicates by activity id.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

import orjson
from celery import shared_task
from django.db import close_old_connections, transaction
from django.db.models import Q
from django.utils import timezone

from . import client, hosts, jobs, media, metrics
from .client import FetchError
from .conf import fedsx_settings
from .errors import FederationError
from .httpsig import other_scheme, sign_request
from .models import Activity, Actor, Delivery, Follow, Host
from .outbox import DELIVERIES
from .retry import Verdict, classify, next_attempt_delay

logger = logging.getLogger("fedsx.delivery")

Status = Delivery.Status
DEFAULT_SCHEME = "cavage"  # what Mastodon, Pleroma, Misskey and GoToSocial verify
# A delivery that must wait for an earlier one about the same object is looked at again
# this long after (sooner when the earlier one settles: its waiters are dispatched then).
WAITING_RECHECK = timedelta(seconds=30)
# Fresh deliveries are handed out by the post's commit; the sweeper leaves them this long
# before it sends them again (a broker down, a process gone before its courier published).
FRESH_GRACE = timedelta(seconds=10)
# The 2xx answers of a batch are written in groups: one UPDATE for up to this many, or for
# those gathered this long. Profiled, one autocommit UPDATE per delivery cost ~0.8 ms each,
# on the one thread every answer passes through (at ~136 deliveries/s in all); a group's
# UPDATE costs about what one did. An answer not written yet risks only being sent again
# (the lease runs out, the sweeper hands it out), which at-least-once delivery allows.
GROUP_SIZE = 50
GROUP_SECONDS = 0.25


@dataclass
class Sent:
    """What one attempt gave: an HTTP status (and headers), or the error that stopped it."""

    status: int | None = None
    retry_after: str | None = None
    error: str = ""
    error_code: str = ""
    scheme: str = DEFAULT_SCHEME
    refused: bool = False  # never sent: the target is not allowed (SSRF guard)


# ── the task and the jobs layer ────────────────────────────────────────────────────────


@shared_task(
    name="fedsx.deliver",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
)
def deliver_task(*delivery_ids: int) -> int:
    close_old_connections()
    return deliver(list(delivery_ids))


def overdue() -> list[int]:
    """What the sweeper hands out: retries that fell due, fresh deliveries whose task never
    came, claims that outlived their worker, and one probe per held host whose cool-off
    is over."""
    now = timezone.now()
    due = (
        Delivery.objects.filter(status=Status.PENDING, next_attempt_at__lte=now)
        .filter(Q(attempts__gt=0) | Q(next_attempt_at__lte=now - FRESH_GRACE))
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[: fedsx_settings.DELIVERY_SWEEP_MAX]
    )
    return [*due, *hosts.probes_due()]


def register() -> None:
    jobs.register(
        jobs.JobKind(
            name=DELIVERIES,
            task_name="fedsx.deliver",
            run=deliver,
            overdue=overdue,
            sweep_interval=lambda: fedsx_settings.DELIVERY_SWEEP_SECONDS,
            in_thread=True,  # never inside the request that posted
            max_ids_per_task=fedsx_settings.DELIVERY_BATCH,
        )
    )


# ── one batch ──────────────────────────────────────────────────────────────────────────


def deliver(ids: list[int]) -> int:
    """Attempt each of these deliveries that is due and not claimed; returns how many
    were attempted."""
    batch = claim(ids)
    if not batch:
        return 0
    bodies: dict[int, bytes] = {}
    # The batch's Host rows in one query (a get_or_create per host per batch cost a query
    # each; missing ones are made together).
    host_rows = hosts.host_rows({delivery.host for delivery in batch})
    earlier = _earlier_settled(batch)
    go = []
    for delivery in batch:
        if not _may_go(delivery, host_rows, earlier):
            continue
        if delivery.activity_id not in bodies:
            bodies[delivery.activity_id] = orjson.dumps(delivery.activity.payload)
        go.append(delivery)
    _send_all(go, bodies, host_rows)
    return len(go)


def claim(ids: list[int]) -> list[Delivery]:
    """Lease the due, unclaimed ones among ``ids`` to this worker (skipping rows another
    worker is claiming at this moment)."""
    now = timezone.now()
    lease = timedelta(seconds=fedsx_settings.DELIVERY_TIMEOUT_SECONDS * 3 + 30)
    with transaction.atomic():
        rows = list(
            Delivery.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(pk__in=ids, status=Status.PENDING, next_attempt_at__lte=now)
            .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
            .select_related("activity", "sender")
            .order_by("id")
        )
        Delivery.objects.filter(pk__in=[row.pk for row in rows]).update(claimed_until=now + lease)
    return rows


def _earlier_settled(batch: list[Delivery]) -> dict[int, bool]:
    """Of the deliveries this batch's ones wait for: whether each is settled (one query,
    none when nothing waits). One that no longer exists waits for nothing."""
    waited = {d.waits_for_id for d in batch if d.waits_for_id is not None}
    if not waited:
        return {}
    rows = Delivery.objects.filter(pk__in=waited).values_list("pk", "status")
    return {pk: status in Delivery.FINAL for pk, status in rows}


def _may_go(delivery: Delivery, host_rows: dict[str, Host], earlier: dict[int, bool]) -> bool:
    """Wait for an earlier delivery about the same object, and for a held host."""
    if delivery.waits_for_id is not None and not earlier.get(delivery.waits_for_id, True):
        _set(delivery, next_attempt_at=timezone.now() + WAITING_RECHECK, claimed_until=None)
        return False
    host = host_rows[delivery.host]
    if host.state == Host.State.OK:
        return True
    if not hosts.is_held(host) and hosts.claim_probe(host):
        return True  # this one is the probe
    _set(delivery, status=Status.HELD, claimed_until=None)
    return False


def _send_all(batch: list[Delivery], bodies: dict[int, bytes], host_rows) -> None:
    per_host = defaultdict(
        lambda: threading.BoundedSemaphore(fedsx_settings.DELIVERY_HOST_CONCURRENCY)
    )
    for delivery in batch:
        per_host[delivery.host]  # created here, in one thread
    workers = max(1, min(fedsx_settings.DELIVERY_CONCURRENCY, len(batch)))
    results = Results()
    done: queue.SimpleQueue = queue.SimpleQueue()
    with ThreadPoolExecutor(workers, thread_name_prefix="fedsx-deliver") as pool:
        futures = {}
        for d in batch:
            future = pool.submit(
                _attempt_limited,
                per_host[d.host],
                d,
                bodies[d.activity_id],
                host_rows[d.host].signature_scheme or DEFAULT_SCHEME,
            )
            futures[future] = d
            future.add_done_callback(done.put)
        for _ in batch:
            # Waiting no longer than the oldest gathered answer may wait to be written: a
            # slow host does not hold the others' results back.
            while True:
                try:
                    future = done.get(timeout=results.due_in())
                    break
                except queue.Empty:
                    results.flush()
            delivery = futures[future]
            try:
                record(delivery, future.result(), host_rows[delivery.host], results)
            except Exception:
                # Left claimed: the lease runs out and the sweeper sends it again.
                logger.exception("recording delivery %s failed", delivery.pk)
            if results.full():
                results.flush()
    results.flush()
    released = results.released + _waiters(results.settled)
    if released:
        jobs.dispatch(DELIVERIES, released)


def _attempt_limited(gate: threading.BoundedSemaphore, *args) -> Sent:
    with gate, metrics.delivery_request():
        return attempt(*args)


# ── one attempt (pool threads: network only, no database) ──────────────────────────────


def attempt(delivery: Delivery, body: bytes, scheme: str) -> Sent:
    """POST the activity, signed with ``scheme``; on a 401 try the other scheme once at
    once (double-knocking: a server may verify only one family)."""
    sent = _post(delivery, body, scheme)
    if sent.status == 401:
        second = _post(delivery, body, other_scheme(scheme))
        if second.status is not None and second.status != 401:
            return second
        return Sent(status=401, error="refused both signature schemes", scheme=scheme)
    return sent


def _post(delivery: Delivery, body: bytes, scheme: str) -> Sent:
    sender = delivery.sender
    headers = {"Content-Type": media.ACTIVITY_JSON, "Accept": media.ACTIVITY_JSON}
    try:
        headers.update(
            sign_request(
                "POST",
                delivery.inbox_url,
                headers,
                body,
                key_id=sender.key_id,
                private_key_pem=sender.private_key_pem,
                scheme=scheme,
            )
        )
        answer = client.post(
            delivery.inbox_url, body, headers, timeout=fedsx_settings.DELIVERY_TIMEOUT_SECONDS
        )
    except FetchError as exc:
        refused = exc.code == "refused_url"
        return Sent(error=exc.detail, error_code=exc.code, scheme=scheme, refused=refused)
    except Exception as exc:  # a bug must not lose the delivery: it is retried
        logger.exception("delivery %s: unexpected error", delivery.pk)
        return Sent(error=f"{type(exc).__name__}: {exc}", error_code="error", scheme=scheme)
    return Sent(status=answer.status, retry_after=answer.headers.get("retry-after"), scheme=scheme)


# ── recording ──────────────────────────────────────────────────────────────────────────


class Results:
    """What one batch's attempts gave, to write: the 2xx answers gathered, written in one
    UPDATE per ``GROUP_SIZE`` (or ``GROUP_SECONDS``), and the ids the batch's end releases
    (from a host's hold at once; those waiting for a settled delivery, ``settled``, in one
    query then)."""

    def __init__(self) -> None:
        # (attempts, status) → deliveries answered 2xx, not written yet
        self.delivered: dict[tuple[int, int], list[Delivery]] = defaultdict(list)
        self.gathered = 0
        self.since = 0.0  # when the oldest of them came (monotonic)
        self.settled: list[int] = []  # delivered, failed or expired: may have waiters
        self.released: list[int] = []  # released from a held host

    def add_delivered(self, delivery: Delivery, status: int) -> None:
        if not self.gathered:
            self.since = time.monotonic()
        self.delivered[(delivery.attempts + 1, status)].append(delivery)
        self.gathered += 1

    def full(self) -> bool:
        return self.gathered >= GROUP_SIZE

    def due_in(self) -> float | None:
        """Seconds until the gathered answers must be written; None when there are none."""
        if not self.gathered:
            return None
        return max(0.0, self.since + GROUP_SECONDS - time.monotonic())

    def flush(self) -> None:
        """Write the gathered 2xx answers. delivered_at is when they are written: at most
        GROUP_SECONDS (or GROUP_SIZE answers) after each came."""
        groups, self.delivered, self.gathered = self.delivered, defaultdict(list), 0
        for (attempts, status), rows in groups.items():
            now = timezone.now()
            fields = {
                "status": Status.DELIVERED,
                "delivered_at": now,
                "last_error": "",
                "attempts": attempts,
                "last_status": status,
                "claimed_until": None,
            }
            try:
                Delivery.objects.filter(pk__in=[d.pk for d in rows]).update(
                    updated_at=now, **fields
                )
            except Exception:
                # Left claimed: the lease runs out and the sweeper sends them again.
                logger.exception("recording %d deliveries failed", len(rows))
                continue
            for delivery in rows:
                for name, value in fields.items():
                    setattr(delivery, name, value)
            self.settled += [d.pk for d in rows]


def record(delivery: Delivery, sent: Sent, host: Host, results: Results) -> None:
    """Write what the attempt gave (a 2xx: gathered into ``results``, written with the
    next group); note in ``results`` what it releases: held deliveries of its host, and
    (once settled) the deliveries waiting for it."""
    now = timezone.now()
    attempts = delivery.attempts + 1
    if sent.refused:
        _set(delivery, status=Status.FAILED, attempts=attempts, last_error=_why(sent))
        metrics.delivery_attempted("refused", attempts)
        results.settled.append(delivery.pk)
        return
    verdict = classify(
        sent.status,
        {"Retry-After": sent.retry_after} if sent.retry_after else None,
        error=sent.error_code or None,
        personal_inbox=delivery.recipient_id is not None,
    )
    if sent.status is None or (sent.status >= 500) or sent.status == 408:
        hosts.record_down(host, _why(sent))
    else:
        results.released += hosts.record_up(
            host, sent.scheme if verdict.verdict is Verdict.DELIVERED else None
        )
    common = {"attempts": attempts, "last_status": sent.status, "claimed_until": None}
    match verdict.verdict:
        case Verdict.DELIVERED:
            metrics.delivery_attempted("delivered", attempts, delivery.created_at)
            results.add_delivered(delivery, sent.status)
            return  # settled when its group is written
        case Verdict.FAILED:
            _set(delivery, status=Status.FAILED, last_error=_why(sent, verdict.reason), **common)
            metrics.delivery_attempted("failed", attempts)
        case Verdict.GONE:
            _set(delivery, status=Status.FAILED, last_error=_why(sent, verdict.reason), **common)
            mark_gone(delivery.recipient_id)
            metrics.delivery_attempted("gone", attempts)
        case _:  # RETRY, and a 401 after both schemes
            delay = next_attempt_delay(attempts, retry_after=verdict.retry_after)
            if delay is None:
                _set(delivery, status=Status.EXPIRED, last_error=_why(sent), **common)
                metrics.delivery_attempted("expired", attempts)
            else:
                _set(
                    delivery,
                    next_attempt_at=now + timedelta(seconds=delay),
                    last_error=_why(sent, verdict.reason),
                    **common,
                )
                metrics.delivery_attempted("retry", attempts)
                return
    results.settled.append(delivery.pk)


def _why(sent: Sent, reason: str = "") -> str:
    text = sent.error or reason or (f"HTTP {sent.status}" if sent.status else "")
    if sent.error_code and sent.error_code not in text:
        text = f"{sent.error_code}: {text}"
    return text[:500]


def _set(delivery: Delivery, **fields) -> None:
    for name, value in fields.items():
        setattr(delivery, name, value)
    Delivery.objects.filter(pk=delivery.pk).update(updated_at=timezone.now(), **fields)


def _waiters(settled: list[int]) -> list[int]:
    """Deliveries that waited for these, due now that they are settled: one query for the
    whole batch (a query per delivery cost ~1.1 ms each, mostly planning), none when the
    batch settled nothing. Any delivery may be waited for (an Undo, Delete or Update waits
    for whatever earlier one about its object is unsettled), so a settled batch asks."""
    if not settled:
        return []
    ids = list(
        Delivery.objects.filter(waits_for__in=settled, status=Status.PENDING)
        .order_by("id")
        .values_list("pk", flat=True)
    )
    if ids:
        Delivery.objects.filter(pk__in=ids).update(next_attempt_at=timezone.now())
    return ids


def mark_gone(actor_id: int | None) -> None:
    """A 410 from a remote actor's own inbox: it is gone. Its follows go (nothing more is
    sent to it) and it is marked, for the operator."""
    if actor_id is None:
        return
    Actor.objects.filter(pk=actor_id, is_local=False).update(gone_at=timezone.now())
    Follow.objects.filter(Q(follower_id=actor_id) | Q(following_id=actor_id)).delete()


# ── operators ──────────────────────────────────────────────────────────────────────────


def retry(queryset) -> list[int]:
    """Send these deliveries again now, whatever they ended as (but delivered ones);
    returns the ids handed out."""
    ids = list(queryset.exclude(status=Status.DELIVERED).values_list("pk", flat=True))
    now = timezone.now()
    Delivery.objects.filter(pk__in=ids).update(
        status=Status.PENDING, next_attempt_at=now, claimed_until=None, updated_at=now
    )
    if ids:
        transaction.on_commit(lambda: jobs.dispatch(DELIVERIES, ids))
    return ids


def cancel(queryset) -> int:
    """Stop trying: pending and held deliveries become cancelled."""
    return queryset.filter(status__in=[Status.PENDING, Status.HELD]).update(
        status=Status.CANCELLED, claimed_until=None, updated_at=timezone.now()
    )


def retry_one(delivery: Delivery) -> list[int]:
    """An operator's retry of one delivery (the command's, the API's); 409 once delivered."""
    if delivery.status == Status.DELIVERED:
        raise FederationError(
            409, "delivered", f"delivery {delivery.pk} was delivered: nothing to retry"
        )
    with transaction.atomic():
        return retry(Delivery.objects.filter(pk=delivery.pk))


def cancel_one(delivery: Delivery) -> None:
    """An operator's cancel of one delivery; 409 unless it is pending or held."""
    if delivery.status in (Status.PENDING, Status.HELD):
        with transaction.atomic():
            if cancel(Delivery.objects.filter(pk=delivery.pk)):
                delivery.status = Status.CANCELLED
                return
        delivery.refresh_from_db(fields=["status"])  # settled between the look and the update
    raise FederationError(
        409,
        "not_cancellable",
        f"delivery {delivery.pk} is {delivery.status}: only pending or held deliveries can be"
        " cancelled",
    )


def held_hosts(deliveries) -> list[str]:
    """The hosts of these deliveries whose breaker holds them (open or unavailable)."""
    return sorted(
        hosts.held(Host.objects.filter(host__in=deliveries.values("host"))).values_list(
            "host", flat=True
        )
    )


def deliveries_of(activity: Activity):
    return Delivery.objects.filter(activity=activity).order_by("id")
