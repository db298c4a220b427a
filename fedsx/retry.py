"""The delivery retry policy, in one place: what an answer means, and when to try again.

Pure: no database, no network. ``fedsx.delivery`` asks ``classify`` what one attempt's
answer means and ``next_attempt_delay`` when the next attempt is due::

    verdict = classify(status, headers, error=error_code, personal_inbox=...)
    if verdict.verdict is Verdict.RETRY:
        delay = next_attempt_delay(attempts, retry_after=verdict.retry_after)  # None: expired

What an answer means (mostly Mastodon's rule, ``response_error_unsalvageable?`` in its
JsonLdHelper: a 4xx other than 401/408/429, or a 501, is not retried):

    2xx                          delivered
    401                          other_scheme: the caller signs with the other scheme once;
                                 a second 401 it treats as retry (Mastodon retries 401s)
    408, 429, 5xx but 501        retry, Retry-After honoured (seconds or HTTP-date); on a 429
                                 without one, X-RateLimit-Reset (Mastodon, GoToSocial)
    410                          gone for a personal inbox (the account is deleted or
                                 suspended for good, as Mastodon answers), else failed
    other 4xx, 501               failed for good (400, 403, 404, 405, 406, 413, 422, ...)
    no answer (error given)      retry: connection refused, reset, timeout, DNS
    1xx, 3xx, anything else      retry (a redirect is not followed for a POST; Mastodon
                                 retries those too)
"""

from __future__ import annotations

import enum
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus

from django.utils.http import parse_http_date

from .conf import fedsx_settings

# Retried, although 4xx: the request timed out, or the server asks us to slow down.
RETRIED_CLIENT_ERRORS = frozenset({408, 429})
# Not retried, although 5xx: the server cannot do POST to this URL at all.
UNSALVAGEABLE_SERVER_ERRORS = frozenset({501})

# The schedule. Mastodon's ActivityPub::DeliveryWorker (app/workers/activitypub/
# delivery_worker.rb) has `sidekiq_options retry: 16` and
#     sidekiq_retry_in { |count| (count**4) + 15 + rand(0.5 * (count**4)) }
# on top of which Sidekiq adds its own rand(10) * (count + 1); count runs 0..15, so 17
# attempts in all. Without jitter its 16 delays sum to 178,552 s (49.6 h); with it, ~62 h
# on average and ~3.1 days at most. (That is polynomial growth, n**4, which Sidekiq calls
# exponential backoff; we keep its curve, since it is what the fediverse is used to.)
#
# Ours: after attempt n (1-based), wait n**4 + 15 s plus a jitter drawn uniformly from
# [0, JITTER * n**4). With DELIVERY_MAX_ATTEMPTS = 16 there are 15 waits, n = 1..15:
#     16, 31, 96, 271, 640, 1311, 2416, 4111, 6576, 10015, 14656, 20751, 28576, 38431,
#     50640 s (the last is 14.1 h)
# which sum to 178,537 s = 49.6 h before jitter: Mastodon's window less its first 15 s
# retry. Jitter adds at most 44,578 s, so the 16th attempt comes 49.6 h to 62.0 h after the
# first (55.8 h on average), about two days. A smaller jitter than Mastodon's 50% keeps
# every wait longer than the one before, jitter included (for n <= 17), and the window
# near two days. No single wait exceeds MAX_BACKOFF_SECONDS, whatever the attempt count.
BASE_SECONDS = 15
JITTER = 0.25
MAX_BACKOFF_SECONDS = 24 * 3600


class Verdict(enum.StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"
    FAILED = "failed"  # for good: this activity will never be accepted at this inbox
    GONE = "gone"  # the inbox's account is gone for good
    OTHER_SCHEME = "other_scheme"  # signature refused: try the other scheme


@dataclass(frozen=True)
class Classification:
    verdict: Verdict
    retry_after: float | None = None  # seconds the server asked us to wait (uncapped)
    reason: str = ""


def classify(
    status: int | None,
    headers: Mapping[str, str] | None = None,
    *,
    error: str | None = None,
    now: datetime | None = None,
    personal_inbox: bool = True,
) -> Classification:
    """What one attempt's answer means: ``status`` and response ``headers``, or ``error``
    (a connection error code or timeout) when there was no answer (status None)."""
    if status is None:
        return Classification(Verdict.RETRY, reason=f"no answer: {error or 'unknown error'}")
    reason = _describe(status)
    if 200 <= status < 300:
        return Classification(Verdict.DELIVERED, reason=reason)
    if status == 401:
        return Classification(Verdict.OTHER_SCHEME, reason=f"{reason}: signature refused")
    if status == 410:
        verdict = Verdict.GONE if personal_inbox else Verdict.FAILED
        return Classification(verdict, reason=reason)
    if status in RETRIED_CLIENT_ERRORS or (
        500 <= status < 600 and status not in UNSALVAGEABLE_SERVER_ERRORS
    ):
        wait = _retry_after(status, headers or {}, _aware(now))
        return Classification(Verdict.RETRY, retry_after=wait, reason=reason)
    if 400 <= status < 600:
        return Classification(Verdict.FAILED, reason=reason)
    return Classification(Verdict.RETRY, reason=f"{reason}: unexpected")


def next_attempt_delay(
    attempts: int, *, retry_after: float | None = None, rng: random.Random | None = None
) -> float | None:
    """Seconds to wait before the next attempt, after ``attempts`` (>= 1) were made; None
    when they are used up (``DELIVERY_MAX_ATTEMPTS``): the delivery has expired.

    The backoff (see the schedule above) or the server's Retry-After, whichever is longer;
    a Retry-After counts up to ``DELIVERY_RETRY_AFTER_CAP_SECONDS``."""
    if attempts < 1:
        raise ValueError("attempts counts the attempts made, from 1")
    if attempts >= fedsx_settings.DELIVERY_MAX_ATTEMPTS:
        return None
    growth = float(attempts) ** 4
    jitter = (rng or _rng).uniform(0.0, JITTER * growth)
    delay = min(BASE_SECONDS + growth + jitter, MAX_BACKOFF_SECONDS)
    if retry_after is not None and not math.isnan(retry_after):
        delay = max(delay, min(retry_after, fedsx_settings.DELIVERY_RETRY_AFTER_CAP_SECONDS))
    return delay


def parse_retry_after(value: str, *, now: datetime | None = None) -> float | None:
    """Seconds from ``now`` that a Retry-After value asks for (RFC 9110 section 10.2.3):
    delay-seconds or an HTTP-date (IMF-fixdate, RFC 850, asctime). A date in the past is
    0; anything unreadable is None."""
    text = value.strip()
    if text.isascii() and text.isdigit():
        return float(text)  # a huge number is inf: capped by next_attempt_delay
    if len(text) > 64:
        return None
    try:
        when = parse_http_date(text)
    except ValueError:
        return None
    return max(0.0, when - _aware(now).timestamp())


_rng = random.Random()  # for jitter only, not secrets


def _retry_after(status: int, headers: Mapping[str, str], now: datetime) -> float | None:
    fields = {name.lower(): value for name, value in headers.items()}
    if "retry-after" in fields:
        wait = parse_retry_after(fields["retry-after"], now=now)
        if wait is not None:
            return wait
    if status == 429 and "x-ratelimit-reset" in fields:
        # Mastodon and GoToSocial send the end of the rate-limit window as ISO 8601.
        return _until_iso(fields["x-ratelimit-reset"], now)
    return None


def _until_iso(value: str, now: datetime) -> float | None:
    try:
        when = datetime.fromisoformat(value.strip()[:64])
    except ValueError:
        return None
    return max(0.0, (_aware(when) - now).total_seconds())


def _aware(moment: datetime | None) -> datetime:
    if moment is None:
        return datetime.now(UTC)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _describe(status: int) -> str:
    try:
        return f"HTTP {status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"HTTP {status}"
