"""Public keys of signers: keyId → (owner, key), from a per-process cache, the database or
a fetch of the key's document.

The database copy lives on the owner's ``Actor`` row (``key_id``, ``public_key_pem``), so a
key learned once serves every process; the in-process cache spares the query and the PEM
parsing on the hot path.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import urldefrag

from django.db import IntegrityError, transaction
from django.utils import timezone

from .client import FetchError
from .conf import fedsx_settings
from .fetch import fetch_json
from .httpsig import SignatureError, load_public_key
from .models import Actor, host_of
from .vocab import as_list

CACHE_SECONDS = 300
CACHE_MAX_ENTRIES = 10_000
T = TypeVar("T")


@dataclass(frozen=True)
class VerificationKey:
    key_id: str
    owner: str
    public_key: Any
    fetched_at: datetime | None
    local: bool
    # (owner, PEM, actor document) of a key just fetched and not yet stored.
    fetched: tuple[str, str, dict | None] | None = None


class KeyUnavailable(Exception):
    """No usable key: ``temporary`` (retry later), ``gone`` (404/410) or refused."""

    def __init__(self, code: str, detail: str, *, temporary: bool = False, gone: bool = False):
        super().__init__(detail)
        self.code, self.detail, self.temporary, self.gone = code, detail, temporary, gone


_cache: dict[str, tuple[VerificationKey, float]] = {}
# Keys fetched but not (yet) seen to verify a request: kept briefly so that a stream of
# unverifiable requests naming the same keyId costs one fetch, not one each.
UNCONFIRMED_SECONDS = 60
_unconfirmed: dict[str, tuple[VerificationKey, float]] = {}
_lock = threading.Lock()


def _remember(key: VerificationKey) -> VerificationKey:
    with _lock:
        if len(_cache) >= CACHE_MAX_ENTRIES:
            _cache.clear()
        _cache[key.key_id] = (key, time.monotonic())
    return key


def forget(key_id: str | None = None) -> None:
    """Drop one key (or all) from this process's cache."""
    with _lock:
        if key_id is None:
            _cache.clear()
            _unconfirmed.clear()
            _refetched.clear()
            key_fetch_budget.clear()
            origin_fetch_budget.clear()
        else:
            _cache.pop(key_id, None)
            _unconfirmed.pop(key_id, None)


def known_key(key_id: str) -> VerificationKey | None:
    """The key from this process's cache or the database, or None: never fetches."""
    cached = _cache.get(key_id)
    if cached and time.monotonic() - cached[1] < CACHE_SECONDS:
        return cached[0]
    actor = (
        Actor.objects.filter(key_id=key_id)
        .exclude(public_key_pem="")
        .only("ap_id", "key_id", "public_key_pem", "key_fetched_at", "is_local")
        .first()
    )
    return _remember(_from_actor(actor)) if actor is not None else None


def key_for(key_id: str) -> VerificationKey:
    """The key named by a signature's keyId; raises KeyUnavailable.

    A key that had to be fetched comes back *unconfirmed*: the caller verifies the request
    with it and only then calls ``store_verified``, so a request with a bad signature can
    never make us store (or cache) whatever a keyId pointed at.
    """
    key = known_key(key_id)
    if key is not None:
        return key
    unconfirmed = _unconfirmed.get(key_id)
    if unconfirmed and time.monotonic() - unconfirmed[1] < UNCONFIRMED_SECONDS:
        return unconfirmed[0]  # fetched moments ago for a request that did not verify
    key = fetch_key(key_id)
    with _lock:
        if len(_unconfirmed) >= CACHE_MAX_ENTRIES:
            _unconfirmed.clear()
        _unconfirmed[key_id] = (key, time.monotonic())
    return key


def refetch_if_stale(key: VerificationKey) -> VerificationKey | None:
    """After a failed verification: the freshly fetched key if it may have rotated, else None.

    A server that rotates its key signs its next delivery with the new one, so the cached
    key is refetched at once, but at most once per KEY_REFETCH_INTERVAL_SECONDS (10 s), so
    a flood of bad signatures cannot make us hammer the signer's server; and one fetch per
    key at a time in this process: concurrent deliveries signed with the new key wait for
    that fetch and share its answer.
    """
    if key.local or key.fetched is not None:
        return None

    def mark() -> None:
        Actor.objects.filter(key_id=key.key_id).update(key_fetched_at=timezone.now())
        forget(key.key_id)

    fresh = _refetch_once(key.key_id, key.fetched_at, lambda: fetch_key(key.key_id), mark)
    return None if fresh is None or fresh.public_key == key.public_key else fresh


def _refetch_once(
    name: Hashable, fetched_at: datetime | None, fetch: Callable[[], T], mark: Callable[[], None]
) -> T | None:
    """What ``fetch`` finds for ``name``, at most once per KEY_REFETCH_INTERVAL_SECONDS and
    one fetch at a time in this process: a caller within the interval of the last refetch
    gets its answer (None if it failed), one within the interval of ``fetched_at`` (the
    database's last fetch, which other processes share) gets None. ``mark`` records in the
    database that a refetch is under way, before it starts."""
    with _refetch_lock(name):
        recent = _refetched.get(name)
        interval = fedsx_settings.KEY_REFETCH_INTERVAL_SECONDS
        if recent is not None and time.monotonic() - recent[1] < interval:
            return recent[0]  # another request refetched it a moment ago
        if fetched_at and timezone.now() - fetched_at < timedelta(seconds=interval):
            return None
        # Whatever the refetch finds, this is not asked again before the interval is over.
        mark()
        _refetched[name] = (None, time.monotonic())
        fresh = fetch()
        _refetched[name] = (fresh, time.monotonic())
        return fresh


_refetched: dict[Hashable, tuple[Any, float]] = {}
_refetch_locks: dict[Hashable, threading.Lock] = {}


def _refetch_lock(name: Hashable) -> threading.Lock:
    with _lock:
        if len(_refetch_locks) >= CACHE_MAX_ENTRIES:  # bounded; a lock in use stays held
            _refetch_locks.clear()
            _refetched.clear()
        return _refetch_locks.setdefault(name, threading.Lock())


class HostBuckets:
    """A token bucket per host for key fetches: ``KEY_FETCHES_PER_HOST_PER_MINUTE``,
    bursts of ``KEY_FETCH_BURST``. Deliveries signed with ever-new keyIds at one host
    cannot make the node hammer it; past the limit they are told to come back (503)."""

    def __init__(self) -> None:
        self.buckets: dict[str, tuple[float, float]] = {}  # host -> (tokens, at)
        self.lock = threading.Lock()

    def take(self, host: str) -> bool:
        rate = fedsx_settings.KEY_FETCHES_PER_HOST_PER_MINUTE / 60.0
        burst = float(fedsx_settings.KEY_FETCH_BURST)
        now = time.monotonic()
        with self.lock:
            if len(self.buckets) >= CACHE_MAX_ENTRIES:
                self.buckets.clear()
            tokens, at = self.buckets.get(host, (burst, now))
            tokens = min(burst, tokens + (now - at) * rate)
            if tokens < 1.0:
                self.buckets[host] = (tokens, now)
                return False
            self.buckets[host] = (tokens - 1.0, now)
            return True

    def clear(self) -> None:
        with self.lock:
            self.buckets.clear()


key_fetch_budget = HostBuckets()
# Fetches of forwarded content from its origin (fedsx.forwarded), at the same rate but in a
# bucket of their own: a flood of forwards cannot starve the key fetches of that host.
origin_fetch_budget = HostBuckets()


def store_verified(key: VerificationKey) -> VerificationKey:
    """Keep a fetched key that has just verified a request (database and process cache)."""
    if key.fetched is None:
        return key
    owner, pem, document = key.fetched
    actor = store_actor(owner, key.key_id, pem, document)
    _unconfirmed.pop(key.key_id, None)
    return _remember(
        VerificationKey(key.key_id, owner, key.public_key, actor.key_fetched_at, local=False)
    )


def fetch_key(key_id: str) -> VerificationKey:
    """Fetch and confirm the key named ``key_id``; unconfirmed until ``store_verified``."""
    document = _fetch(urldefrag(key_id)[0])
    owner, pem, actor_document = key_in_document(document, key_id)
    if actor_document is None or actor_document.get("id") != urldefrag(key_id)[0]:
        # A key document, or an actor document served somewhere else than at its id (as
        # GoToSocial's /main-key): the owner's own document must list the same key.
        actor_document = _fetch(owner)
        if actor_document.get("id") != owner:
            raise KeyUnavailable("key_owner_mismatch", "the owner's document has another id")
        try:
            _, owner_pem, _ = key_in_document(actor_document, key_id)
        except KeyUnavailable:
            owner_pem = ""
        if owner_pem.strip() != pem.strip():
            raise KeyUnavailable("key_owner_mismatch", "the owner does not list that key")
    try:
        public_key = load_public_key(pem)
    except SignatureError as exc:
        raise KeyUnavailable("bad_key", exc.detail) from None
    return VerificationKey(
        key_id, owner, public_key, None, local=False, fetched=(owner, pem, actor_document)
    )


def _fetch(url: str) -> dict:
    host = host_of(url)
    if not key_fetch_budget.take(host):
        raise KeyUnavailable(
            "key_fetch_rate", f"too many key fetches from {host} just now", temporary=True
        )
    try:
        return fetch_json(url)
    except FetchError as exc:
        raise KeyUnavailable(exc.code, exc.detail, temporary=exc.temporary, gone=exc.gone) from None


def key_in_document(document: dict, key_id: str) -> tuple[str, str, dict | None]:
    """(owner id, PEM, the actor document if it was one) for ``key_id`` in a fetched document."""
    if isinstance(document.get("publicKeyPem"), str):  # a key document (GoToSocial and others)
        if document.get("id") != key_id:
            raise KeyUnavailable("key_not_found", "the key document has another id")
        owner, pem, actor_document = document.get("owner"), document["publicKeyPem"], None
    else:  # an actor document with one or more keys
        keys = document.get("publicKey")
        match = next(
            (k for k in as_list(keys) if isinstance(k, dict) and k.get("id") == key_id),
            None,
        )
        if match is None or not isinstance(match.get("publicKeyPem"), str):
            raise KeyUnavailable("key_not_found", "the fetched document does not hold that key")
        owner, pem, actor_document = document.get("id"), match["publicKeyPem"], document
        if match.get("owner") not in (None, owner):
            raise KeyUnavailable("key_owner_mismatch", "the key names another owner")
    if not isinstance(owner, str) or not owner:
        raise KeyUnavailable("key_not_found", "the key document names no owner")
    # Whoever serves the key may only speak for actors on its own host.
    if host_of(owner) != host_of(key_id):
        raise KeyUnavailable("key_owner_mismatch", "the key's owner is on another host")
    return owner, pem, actor_document


def actor_fields(document: dict) -> dict[str, Any]:
    """Actor columns from a remote actor document."""

    def text(name: str) -> str:
        value = document.get(name)
        return value[:500] if isinstance(value, str) else ""

    endpoints = document.get("endpoints") if isinstance(document.get("endpoints"), dict) else {}
    shared = endpoints.get("sharedInbox")
    return {
        "username": text("preferredUsername")[:255],
        "name": text("name"),
        "summary": document.get("summary") if isinstance(document.get("summary"), str) else "",
        "actor_type": text("type")[:32] or "Person",
        "inbox_url": text("inbox"),
        "shared_inbox_url": shared[:500] if isinstance(shared, str) else "",
        "outbox_url": text("outbox"),
        "followers_url": text("followers"),
        "following_url": text("following"),
        "document": document,
    }


def store_actor(owner: str, key_id: str | None, pem: str, document: dict | None) -> Actor:
    """Store (or refresh) the remote actor ``owner`` with its key and, when given, its
    document's columns."""
    now = timezone.now()
    defaults: dict[str, Any] = {"domain": host_of(owner)}
    if key_id:
        defaults |= {"key_id": key_id, "public_key_pem": pem, "key_fetched_at": now}
    if document is not None:
        defaults |= actor_fields(document) | {"fetched_at": now}
    with transaction.atomic():
        # A key id moves with its owner: release it from any other row first.
        if key_id:
            Actor.objects.filter(key_id=key_id).exclude(ap_id=owner).update(key_id=None)
        try:
            with transaction.atomic():
                actor, _ = Actor.objects.update_or_create(
                    ap_id=owner, is_local=False, defaults=defaults
                )
        except IntegrityError:  # a concurrent fetch of the same key stored it first
            actor = Actor.objects.get(ap_id=owner)
    return actor


def _from_actor(actor: Actor) -> VerificationKey:
    try:
        public_key = load_public_key(actor.public_key_pem)
    except SignatureError as exc:
        raise KeyUnavailable("bad_key", exc.detail) from None
    return VerificationKey(
        actor.key_id or "", actor.ap_id, public_key, actor.key_fetched_at, local=actor.is_local
    )


def drop_key_of(actor_id: str) -> None:
    """Forget a deleted actor's key, in the database and in this process."""
    for key_id in Actor.objects.filter(ap_id=actor_id).values_list("key_id", flat=True):
        if key_id:
            forget(key_id)
    Actor.objects.filter(ap_id=actor_id, is_local=False).update(key_id=None, public_key_pem="")


# -- FEP-521a assertion keys (Object Integrity Proofs) --------------------------------------


@dataclass(frozen=True)
class AssertionKey:
    """A Multikey an actor lists under ``assertionMethod``; ``document`` is the actor
    document it came from when it was just fetched (stored with ``store_assertion_key``
    once a proof verified with it), None when it came from the database."""

    method_id: str
    owner: str
    multibase: str
    document: dict | None = None


def assertion_key(method_id: str, *, refetch: bool = False) -> AssertionKey:
    """The Multikey ``method_id`` (``<actor>#<key>``) names, from the owner's stored actor
    document or, when that does not list it (or ``refetch``), the owner's document fetched
    at its id, through the same budget and guard as every key fetch. Raises KeyUnavailable.
    """
    owner = urldefrag(method_id)[0]
    stored, fetched_at = (
        Actor.objects.filter(ap_id=owner, is_local=False)
        .exclude(document=None)
        .values_list("document", "fetched_at")
        .first()
    ) or (None, None)
    found = multikey_in_document(stored, method_id) if isinstance(stored, dict) else ""
    if found and not refetch:
        return AssertionKey(method_id, owner, found)
    # A listed key that failed is refetched as an HTTP signature key is (not before the
    # interval since the document was fetched); for one it does not list, the document is
    # fetched too. Either way one fetch per actor at a time, and at most one per interval:
    # proofs arriving together after a rotation share it.
    document = _refetch_once(
        ("assertion", owner),
        fetched_at if found else None,
        lambda: _actor_document(owner),
        lambda: Actor.objects.filter(ap_id=owner, is_local=False).update(fetched_at=timezone.now()),
    )
    if document is None:
        raise KeyUnavailable("key_not_found", "the actor's document was fetched moments ago")
    found = multikey_in_document(document, method_id)
    if not found:
        raise KeyUnavailable("key_not_found", "the actor lists no such assertion key")
    return AssertionKey(method_id, owner, found, document)


def _actor_document(owner: str) -> dict:
    document = _fetch(owner)
    if document.get("id") != owner:
        raise KeyUnavailable("key_owner_mismatch", "the owner's document has another id")
    return document


def multikey_in_document(document: dict, method_id: str) -> str:
    """The ``publicKeyMultibase`` of the Multikey ``method_id`` that ``document`` (the
    owner's actor document) lists under ``assertionMethod``, or ''."""
    owner = document.get("id")
    methods = document.get("assertionMethod")
    for method in as_list(methods):
        if (
            isinstance(method, dict)
            and method.get("id") == method_id
            and method.get("type") == "Multikey"
            and method.get("controller", owner) == owner
            and isinstance(method.get("publicKeyMultibase"), str)
        ):
            return method["publicKeyMultibase"]
    return ""


def store_assertion_key(key: AssertionKey) -> None:
    """Keep the actor document a fetched assertion key came from, once it verified a proof."""
    if key.document is not None:
        store_actor(key.owner, None, "", key.document)
