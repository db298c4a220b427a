"""The kernel's records: actors, activities, the per-actor inbox/outbox logs and projections."""

from __future__ import annotations

import functools
import re
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from rest_framework.authtoken.models import TokenProxy

from .conf import fedsx_settings

USERNAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")


def validate_username(value: str) -> None:
    if not USERNAME_RE.fullmatch(value or ""):
        raise ValidationError(
            f"invalid actor name {value!r}: use 1-64 letters, digits, '_', '.' or '-', "
            "starting with a letter, digit or '_'",
            code="invalid_username",
        )


DEFAULT_PORTS = {"http": 80, "https": 443}


def host_of(url: str) -> str:
    """The host of a URL as fedsx compares hosts: lower-case, without a trailing dot
    (``example.`` is ``example``) or the scheme's default port, with any other port;
    '' for a non-URL."""
    if isinstance(url, str) and len(url) <= HOST_OF_CACHED_LENGTH:
        return _cached_host_of(url)
    return _host_of(url)


# Asked four times a delivery about the same few senders and this node's own URL; only
# short strings are kept, as senders choose these (a keyId may be kilobytes long).
HOST_OF_CACHED_LENGTH = 512


def _host_of(url: str) -> str:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return ""
    host = (parts.hostname or "").rstrip(".")
    if ":" in host:  # IPv6
        host = f"[{host}]"
    if port is None or port == DEFAULT_PORTS.get(parts.scheme):
        return host
    return f"{host}:{port}"


_cached_host_of = functools.lru_cache(maxsize=4096)(_host_of)


def local_actor_id(username: str) -> str:
    return f"{fedsx_settings.BASE_URL}/actors/{username}"


# The instance actor (the node itself, which signs the node's GETs: fedsx.actors) is the one
# local actor without a username. No user can have it (validate_username refuses ""), no
# /actors/<name> URL can name it, and the unique local username keeps it single.
INSTANCE_USERNAME = ""


def instance_actor_id() -> str:
    """``<BASE_URL>/actor``, where Mastodon serves its own: outside /actors/, so no user's
    name can ever collide with it."""
    return f"{fedsx_settings.BASE_URL}/actor"


class Actor(models.Model):
    """A local actor (we hold its private key) or a remote one we have seen or fetched."""

    ap_id = models.CharField("ActivityPub id", max_length=500, unique=True)
    username = models.CharField("preferred username", max_length=255, blank=True)
    domain = models.CharField(max_length=255, db_index=True)
    is_local = models.BooleanField(default=False, db_index=True)
    name = models.CharField("display name", max_length=500, blank=True)
    summary = models.TextField(blank=True)
    actor_type = models.CharField(max_length=32, default="Person")

    inbox_url = models.CharField(max_length=500, blank=True)
    shared_inbox_url = models.CharField(max_length=500, blank=True)
    outbox_url = models.CharField(max_length=500, blank=True)
    followers_url = models.CharField(max_length=500, blank=True, db_index=True)
    following_url = models.CharField(max_length=500, blank=True)

    key_id = models.CharField(max_length=500, unique=True, null=True, blank=True)
    public_key_pem = models.TextField(blank=True)
    private_key_pem = models.TextField(blank=True, help_text="Local actors only; never shown.")
    # Ed25519 key of a local actor (FEP-521a Multikey, multibase): it makes the Object
    # Integrity Proof (fedsx/proofs.py) on every activity the actor posts.
    ed25519_public_key = models.CharField("Ed25519 publicKeyMultibase", max_length=64, blank=True)
    ed25519_private_key = models.CharField(
        "Ed25519 secretKeyMultibase",
        max_length=64,
        blank=True,
        help_text="Local actors only; never shown.",
    )
    # The avatar: a URL and its media type (the actor document's icon), when one is set.
    icon_url = models.CharField(
        "icon URL", max_length=500, blank=True, validators=[URLValidator(schemes=["http", "https"])]
    )
    icon_media_type = models.CharField("icon media type", max_length=100, blank=True)

    document = models.JSONField(
        null=True, blank=True, help_text="Remote actor document as fetched."
    )
    # Per-actor log positions: the last sequence number handed out in each log.
    inbox_seq = models.BigIntegerField(default=0, editable=False)
    outbox_seq = models.BigIntegerField(default=0, editable=False)

    fetched_at = models.DateTimeField(null=True, blank=True)
    key_fetched_at = models.DateTimeField(null=True, blank=True)
    # A remote actor whose own inbox answered 410 Gone: nothing more is sent to it.
    gone_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["username", "domain"]
        constraints = [
            models.UniqueConstraint(
                fields=["username"], condition=Q(is_local=True), name="unique_local_username"
            )
        ]

    def __str__(self) -> str:
        if self.is_instance:
            return f"{self.domain} (instance actor)"
        return f"{self.username or '?'}@{self.domain}"

    @property
    def is_instance(self) -> bool:
        """The node's own actor, not a user (see INSTANCE_USERNAME)."""
        return self.is_local and self.username == INSTANCE_USERNAME

    @property
    def preferred_username(self) -> str:
        # The instance actor is named after the node, as Mastodon's: acct:<domain>@<domain>.
        return self.domain if self.is_instance else self.username

    @property
    def handle(self) -> str:
        return f"@{self.preferred_username}@{self.domain}"

    def set_local_urls(self) -> None:
        """(Re)derive a local actor's ids from FEDSX BASE_URL."""
        base = fedsx_settings.BASE_URL
        instance = self.is_instance
        self.ap_id = instance_actor_id() if instance else local_actor_id(self.username)
        self.domain = host_of(base)
        self.inbox_url = f"{self.ap_id}/inbox"
        self.outbox_url = f"{self.ap_id}/outbox"
        # The node itself follows no one and is followed by no one: no such collections.
        self.followers_url = "" if instance else f"{self.ap_id}/followers"
        self.following_url = "" if instance else f"{self.ap_id}/following"
        self.shared_inbox_url = f"{base}/inbox"
        self.key_id = f"{self.ap_id}#main-key"

    @property
    def multikey_id(self) -> str:
        """The id of the Ed25519 Multikey in the actor's assertionMethod (FEP-521a)."""
        return f"{self.ap_id}#ed25519-key"


def local_users() -> models.QuerySet[Actor]:
    """The node's users: its local actors but the instance actor, which is the node itself
    (not listed, not counted, never posting)."""
    return Actor.objects.filter(is_local=True).exclude(username=INSTANCE_USERNAME)


class Activity(models.Model):
    """One activity as received, stored once however often it is delivered.

    An id is unique per sending actor, not globally: the sender proves who it is, not that
    it owns the id it chose, so another sender's activity can never claim (and shadow) it.
    """

    # NULL, not "", for an activity without an id: NULLs never collide in the unique key.
    ap_id = models.CharField("ActivityPub id", max_length=500, null=True, blank=True)  # noqa: DJ001
    activity_cid = models.CharField(max_length=100)
    type = models.CharField(max_length=64)
    actor = models.CharField("actor id", max_length=500)
    object_id = models.CharField(max_length=500, blank=True)
    payload = models.JSONField()
    received_at = models.DateTimeField(default=timezone.now)
    # The actor that delivered it for its actor (a forwarded reply, a relayed post), or "".
    # A database default too: the inbox's one-statement append does not name the column.
    forwarded_by = models.CharField(max_length=500, blank=True, default="", db_default="")

    class Meta:
        verbose_name_plural = "activities"
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(fields=["ap_id", "actor"], name="unique_activity_id_per_actor"),
            models.UniqueConstraint(fields=["activity_cid"], name="unique_activity_cid"),
        ]
        # Declared here rather than with unique=True/db_index=True on the fields, which on
        # Postgres add a second, varchar_pattern_ops index per field for LIKE queries that
        # nothing runs: three index updates on every append for nothing.
        indexes = [
            models.Index(fields=["type"], name="activity_type"),
            models.Index(fields=["object_id"], name="activity_object_id"),
            models.Index(fields=["received_at"], name="activity_received_at"),
            # ?actor= in the API and the admin, newest first (the unique constraint leads
            # with ap_id, so it cannot answer it).
            models.Index(fields=["actor", "id"], name="activity_actor_id"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.ap_id or self.activity_cid}"


class LogEntry(models.Model):
    """Shared shape of the per-actor logs: a gap-free, monotonic sequence per actor."""

    seq = models.BigIntegerField()
    activity = models.ForeignKey(Activity, on_delete=models.CASCADE)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        abstract = True
        ordering = ["actor", "-seq"]

    def __str__(self) -> str:
        return f"{self.actor} #{self.seq}"


class InboxEntry(LogEntry):
    """An activity appended to a local actor's inbox log."""

    # No index of its own: the unique (actor, seq) index serves look-ups by actor.
    actor = models.ForeignKey(
        Actor, on_delete=models.CASCADE, related_name="inbox_entries", db_index=False
    )
    # No index of its own either: the unique (activity, actor) index leads with it.
    activity = models.ForeignKey(
        Activity, on_delete=models.CASCADE, related_name="inbox_entries", db_index=False
    )
    # Set when the triggers pipeline has run for this entry; the sweeper looks for NULLs.
    triggers_applied_at = models.DateTimeField(null=True, blank=True)

    class Meta(LogEntry.Meta):
        verbose_name_plural = "inbox entries"
        constraints = [
            models.UniqueConstraint(fields=["actor", "seq"], name="unique_inbox_actor_seq"),
            models.UniqueConstraint(
                fields=["activity", "actor"], name="unique_inbox_activity_actor"
            ),
        ]
        indexes = [
            models.Index(
                fields=["created_at"],
                condition=Q(triggers_applied_at__isnull=True),
                name="inbox_pending_triggers",
            )
        ]


class OutboxEntry(LogEntry):
    """An activity a local actor published, in its outbox log."""

    actor = models.ForeignKey(
        Actor, on_delete=models.CASCADE, related_name="outbox_entries", db_index=False
    )
    activity = models.ForeignKey(Activity, on_delete=models.CASCADE, related_name="outbox_entries")
    # Addressed to the public collection: listed in the outbox and served to anyone.
    # db_default: rows written by raw SQL (tests, operators' scripts) stay valid.
    public = models.BooleanField(default=False, db_default=False)

    class Meta(LogEntry.Meta):
        verbose_name_plural = "outbox entries"
        constraints = [
            models.UniqueConstraint(fields=["actor", "seq"], name="unique_outbox_actor_seq"),
            models.UniqueConstraint(
                fields=["actor", "activity"], name="unique_outbox_actor_activity"
            ),
        ]


class Follow(models.Model):
    """Projection of Follow / Accept / Reject / Undo: who follows whom, and in which state."""

    class State(models.TextChoices):
        PENDING = "pending"
        ACCEPTED = "accepted"
        # Our follow of a remote actor that it refused; kept so the operator sees why.
        REJECTED = "rejected"

    follower = models.ForeignKey(Actor, on_delete=models.CASCADE, related_name="following_set")
    following = models.ForeignKey(Actor, on_delete=models.CASCADE, related_name="follower_set")
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    follow_activity_id = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["follower", "following"], name="unique_follow")
        ]

    def __str__(self) -> str:
        return f"{self.follower} → {self.following} ({self.state})"


def normalize_domain(value: str) -> str:
    """``Spam.Example.``, ``https://spam.example/`` or ``bücher.example`` as stored: the bare,
    lower-case, IDNA (punycode) host without a trailing dot. Lenient (it also reads the
    hosts of incoming requests): ``validate_domain`` says whether the result is a name."""
    value = value.strip().lower()
    if "//" in value:
        value = urlsplit(value).hostname or ""
    value = value.split("/", 1)[0].rstrip(".")
    try:
        return value.encode("idna").decode("ascii")
    except UnicodeError:
        return value


DOMAIN_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")


def validate_domain(value: str) -> None:
    """A domain name once normalized: at most 253 characters, labels of 1 to 63 (RFC 1035),
    IDNA-encodable. Checked after normalizing, since punycode can make a name four times
    as long as typed."""
    domain = normalize_domain(value)
    if (
        not domain
        or len(domain) > 253
        or not all(DOMAIN_LABEL.fullmatch(label) for label in domain.split("."))
    ):
        raise ValidationError(f"{value!r} is not a domain name", code="invalid")


class DomainBlock(models.Model):
    """A blocked remote domain: its deliveries are refused (403) before any fetch."""

    domain = models.CharField(max_length=255, unique=True, validators=[validate_domain])
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["domain"]

    def __str__(self) -> str:
        return self.domain

    def save(self, *args, **kwargs) -> None:
        self.domain = normalize_domain(self.domain)
        super().save(*args, **kwargs)


class Host(models.Model):
    """A remote server we deliver to: its health and what it answers to.

    One explicit state instead of scattered flags: ``ok`` (deliveries go), ``open`` (the
    circuit breaker holds deliveries without spending their attempts until ``retry_at``,
    when one probe goes), ``unavailable`` (failing on many distinct days: deliveries wait
    as held until a success or an operator's clear).
    """

    class State(models.TextChoices):
        OK = "ok"
        OPEN = "open"
        UNAVAILABLE = "unavailable"

    host = models.CharField(max_length=255, unique=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.OK)
    # The signature scheme this host accepted last ("" until one did): cavage or rfc9421.
    signature_scheme = models.CharField(max_length=16, blank=True)
    consecutive_failures = models.IntegerField(default=0)
    # Distinct UTC days with a failure and no success since the last success.
    failing_days = models.IntegerField(default=0)
    last_failure_day = models.DateField(null=True, blank=True)
    retry_at = models.DateTimeField(null=True, blank=True, help_text="When the probe may go.")
    unavailable_since = models.DateTimeField(null=True, blank=True)
    # Since when its deliveries have been held (the breaker opened), None while it is ok.
    held_since = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_failure_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["host"]

    def __str__(self) -> str:
        return f"{self.host} ({self.state})"


class Delivery(models.Model):
    """One posted activity to one target inbox, attempted until delivered or given up.

    The schedule lives here (``next_attempt_at``), not in the broker: a dead broker, a
    killed worker or a restart loses nothing, the sweeper hands out what is due.
    """

    class Status(models.TextChoices):
        PENDING = "pending"  # due at next_attempt_at
        DELIVERED = "delivered"
        FAILED = "failed"  # refused for good (4xx), or refused before sending (SSRF)
        EXPIRED = "expired"  # still failing when the retry window closed
        HELD = "held"  # its host's breaker is open or the host is unavailable
        CANCELLED = "cancelled"  # by an operator

    FINAL = (Status.DELIVERED, Status.FAILED, Status.EXPIRED, Status.CANCELLED)

    activity = models.ForeignKey(Activity, on_delete=models.CASCADE, related_name="deliveries")
    sender = models.ForeignKey(Actor, on_delete=models.CASCADE, related_name="deliveries_sent")
    inbox_url = models.CharField(max_length=500)
    host = models.CharField(max_length=255)
    # The remote actor behind a personal inbox (a 410 there means that actor is gone);
    # NULL for a shared inbox, which serves many.
    recipient = models.ForeignKey(
        Actor, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # What the activity is about (its object's id): an Undo, Delete or Update waits for
    # earlier deliveries about the same thing to the same inbox.
    subject = models.CharField(max_length=500, blank=True)
    waits_for = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.IntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    # Until when a worker holds it: a claim that outlives its worker (killed) runs out.
    claimed_until = models.DateTimeField(null=True, blank=True)
    last_status = models.IntegerField(null=True, blank=True, help_text="Last HTTP status.")
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "deliveries"
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["activity", "inbox_url"], name="unique_delivery_activity_inbox"
            )
        ]
        indexes = [
            # The sweeper's and the worker's question: what is due now?
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status="pending"),
                name="delivery_due",
            ),
            models.Index(fields=["host", "status"], name="delivery_host_status"),
            # The dashboard's counts: pending and held now, the others settled lately.
            models.Index(fields=["status", "updated_at"], name="delivery_status_updated"),
            models.Index(fields=["inbox_url", "subject"], name="delivery_inbox_subject"),
        ]

    def __str__(self) -> str:
        return f"{self.activity_id} → {self.inbox_url} ({self.status})"

    @property
    def is_final(self) -> bool:
        return self.status in self.FINAL


class InboxTally(models.Model):
    """Inbox requests in one hour with one outcome: ``accepted``, ``actor_gone`` (a 202 to
    a deleted actor's Delete, which stores nothing) or a refusal's error code.

    Refused requests are stored nowhere else (nothing unverified is stored), so the
    dashboard's inbox figures are these counts, kept by ``fedsx.tallies`` in batches.
    """

    ACCEPTED = "accepted"
    ACTOR_GONE = "actor_gone"
    ANSWERED = (ACCEPTED, ACTOR_GONE)  # the 202s: every other outcome is a refusal

    hour = models.DateTimeField(help_text="The start of the hour (UTC).")
    outcome = models.CharField(max_length=64)
    count = models.BigIntegerField(default=0)

    class Meta:
        verbose_name_plural = "inbox tallies"
        ordering = ["-hour", "outcome"]
        constraints = [
            models.UniqueConstraint(fields=["hour", "outcome"], name="unique_inbox_tally")
        ]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H:00} {self.outcome}: {self.count}"


class ApiToken(TokenProxy):
    """A user's REST API token as the admin shows it: named by its user, never by its key
    (DRF's own admin lists and titles every token by its key, so anyone allowed to *view*
    tokens could act as their owners)."""

    class Meta:
        proxy = True
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"API token of {self.user}"
