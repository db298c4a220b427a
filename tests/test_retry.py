"""fedsx.retry: what real servers' answers mean, Retry-After, and the backoff schedule.

The answers are those in tests/fixtures/responses (what Mastodon, GoToSocial and
Activity-Relay answer to inbox POSTs, as their own tests assert; see README.txt there).
"""

from __future__ import annotations

import itertools
import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.test import override_settings

from fedsx.retry import (
    JITTER,
    MAX_BACKOFF_SECONDS,
    Classification,
    Verdict,
    classify,
    next_attempt_delay,
    parse_retry_after,
)

RESPONSES = Path(__file__).resolve().parent / "fixtures" / "responses"
NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
HOUR, DAY = 3600, 86400
MAX_ATTEMPTS = 16
CAP = 6 * HOUR


def load(name: str) -> dict:
    return json.loads((RESPONSES / name).read_text())


# --- real servers' answers ----------------------------------------------------------------------

# What each fixture case means for the sender, and why. Keyed by the case's "test" (or
# "context") so that a case added to a fixture fails test_every_case_is_classified.
MASTODON = {  # (personal inbox?, verdict)
    "signed, shared inbox, body {}": (False, Verdict.DELIVERED),
    # Too large: it will never be accepted, whenever it is sent again.
    "signed, payload larger than ActivityPub::Activity::MAX_JSON_SIZE": (True, Verdict.FAILED),
    # 410 only once suspension or deletion is final: the account is gone.
    "signed, to the inbox of a permanently suspended account (deletion request gone)": (
        True,
        Verdict.GONE,
    ),
    "signed, to the inbox of a temporarily suspended account": (True, Verdict.DELIVERED),
    "signed, to the inbox of a permanently deleted account": (True, Verdict.GONE),
    "signed, to the inbox of an account pending deletion": (True, Verdict.DELIVERED),
    "signed, with a Collection-Synchronization header (matching or not)": (
        True,
        Verdict.DELIVERED,
    ),
    # Our signature was not accepted: the other scheme is tried (then retried, as Mastodon does).
    "unsigned, body {}": (False, Verdict.OTHER_SCHEME),
    "unsigned Update whose actor https://unknown-actor.host is unknown (Mastodon does not fetch it)": (  # noqa: E501
        False,
        Verdict.DELIVERED,
    ),
}
GOTOSOCIAL = {
    "TestPostBlock": Verdict.DELIVERED,
    "TestPostUnblock": Verdict.DELIVERED,
    "TestPostUpdate": Verdict.DELIVERED,
    "TestPostDelete": Verdict.DELIVERED,
    "TestPostEmptyCreate": Verdict.DELIVERED,
    "TestPostCreateMalformedBlock": Verdict.FAILED,  # malformed: sending it again won't help
    "TestPostFromBlockedAccount": Verdict.FAILED,  # blocked: for good
    # Accepted (202) although not processed: delivered, as far as a sender can know.
    "TestPostFromBlockedAccountToOtherAccount": Verdict.DELIVERED,
    "TestPostUnauthorized": Verdict.OTHER_SCHEME,
}
ACTIVITY_RELAY = {  # a relay's /inbox is a shared inbox
    "TestHandleInboxNoSignature": Verdict.FAILED,
    "TestHandleInboxInvalidMethod": Verdict.FAILED,
    "TestHandleInboxValidFollow": Verdict.DELIVERED,
    "TestHandleInboxValidManuallyFollow": Verdict.DELIVERED,
    "TestHandleInboxValidFollowBlocked": Verdict.DELIVERED,
    "TestHandleInboxFollowLitePub": Verdict.DELIVERED,
    "TestHandleInboxInvalidFollow": Verdict.DELIVERED,
    "TestHandleInboxValidUnfollow": Verdict.DELIVERED,
    "TestHandleInboxValidCreate": Verdict.DELIVERED,
    # "please follow in advance": classify sees only the 401, so the other scheme is tried
    # and a second 401 retried until the delivery expires (Mastodon retries 401s too).
    "TestHandleInboxUnsubscriptionCreate": Verdict.OTHER_SCHEME,
    # The relay could not fetch the announced object and says 400: we take its word.
    "TestHandleInboxAnnounceLitePub": Verdict.FAILED,
}


def test_every_case_is_classified():
    assert {c["context"] for c in load("mastodon-inbox-status-codes.json")["cases"]} == set(
        MASTODON
    )
    assert {c["test"] for c in load("gotosocial-inbox-post.json")["cases"]} == set(GOTOSOCIAL)
    assert {c["test"] for c in load("activity-relay-inbox-status-codes.json")["cases"]} == set(
        ACTIVITY_RELAY
    )


@pytest.mark.parametrize(
    "case", load("mastodon-inbox-status-codes.json")["cases"], ids=lambda c: c["context"][:50]
)
def test_mastodon_answers(case):
    personal, expected = MASTODON[case["context"]]
    assert classify(case["status"], personal_inbox=personal).verdict is expected


@pytest.mark.parametrize(
    "case", load("gotosocial-inbox-post.json")["cases"], ids=lambda c: c["test"]
)
def test_gotosocial_answers(case):
    assert (
        classify(case["status"], {"Content-Type": "application/json"}).verdict
        is (GOTOSOCIAL[case["test"]])
    )


@pytest.mark.parametrize(
    "case", load("activity-relay-inbox-status-codes.json")["cases"], ids=lambda c: c["test"]
)
def test_activity_relay_answers(case):
    verdict = classify(case["status"], personal_inbox=False).verdict
    assert verdict is ACTIVITY_RELAY[case["test"]]


def test_gotosocial_rate_limits():
    limits = load("gotosocial-inbox-post.json")["rate_limiting"]
    assert "Retry-After" in limits["throttled"]["headers"]
    throttled = classify(limits["throttled"]["status"], {"Retry-After": "30"}, now=NOW)
    assert throttled == Classification(Verdict.RETRY, 30.0, "HTTP 429 Too Many Requests")
    # Rate limited: no Retry-After, the window's end in X-RateLimit-Reset (ISO 8601).
    assert "X-RateLimit-Reset" in limits["rate_limited"]["headers"][2]
    reset = (NOW + timedelta(minutes=5)).isoformat().replace("+00:00", "Z")
    headers = {"X-RateLimit-Limit": "300", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset}
    limited = classify(limits["rate_limited"]["status"], headers, now=NOW)
    assert (limited.verdict, limited.retry_after) == (Verdict.RETRY, 300.0)


def mastodon_unsalvageable(code: int) -> bool:
    # The sender-side rule quoted in mastodon-inbox-status-codes.json ("sender_side").
    return code == 501 or (400 <= code < 500 and code not in (401, 408, 429))


def test_the_sender_side_rule_is_quoted_as_we_read_it():
    rule = load("mastodon-inbox-status-codes.json")["sender_side"]["response_error_unsalvageable?"]
    assert rule.startswith(
        "response.code == 501 || ((400...500).cover?(response.code) && "
        "![401, 408, 429].include?(response.code))"
    )


@pytest.mark.parametrize("code", range(400, 600))
def test_we_give_up_where_mastodon_does(code):
    verdict = classify(code).verdict
    if mastodon_unsalvageable(code):
        assert verdict in (Verdict.FAILED, Verdict.GONE)
    else:  # a 401 is retried after the other scheme was tried
        assert verdict in (Verdict.RETRY, Verdict.OTHER_SCHEME)


# --- the rest of the table ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        (200, Verdict.DELIVERED),
        (201, Verdict.DELIVERED),
        (202, Verdict.DELIVERED),
        (204, Verdict.DELIVERED),
        *[(code, Verdict.FAILED) for code in (400, 403, 404, 405, 406, 413, 415, 422, 501)],
        (401, Verdict.OTHER_SCHEME),
        *[(code, Verdict.RETRY) for code in (408, 429, 500, 502, 503, 504, 520, 599)],
        *[(code, Verdict.RETRY) for code in (100, 301, 302, 307, 308, 600, 0)],
    ],
)
def test_status_table(status, verdict):
    assert classify(status).verdict is verdict


def test_gone_only_for_a_personal_inbox():
    assert classify(410).verdict is Verdict.GONE
    assert classify(410, personal_inbox=False).verdict is Verdict.FAILED


@pytest.mark.parametrize("error", ["timeout", "connect", "unresolvable", "reset", None])
def test_no_answer_is_retried(error):
    result = classify(None, error=error)
    assert (result.verdict, result.retry_after) == (Verdict.RETRY, None)
    assert (error or "unknown") in result.reason


def test_reasons_name_the_status():
    assert classify(404).reason == "HTTP 404 Not Found"
    assert classify(299).reason == "HTTP 299"


# --- Retry-After ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        (" 0 ", 0.0),
        ("Sat, 01 Mar 2025 12:02:00 GMT", 120.0),  # IMF-fixdate
        ("Saturday, 01-Mar-25 12:02:00 GMT", 120.0),  # RFC 850
        ("Sat Mar  1 12:02:00 2025", 120.0),  # asctime
        ("Sat, 01 Mar 2025 11:00:00 GMT", 0.0),  # in the past: now
        ("-5", None),
        ("1.5", None),
        ("soon", None),
        ("", None),
        ("١٢٠", None),  # digits, but not ASCII ones
        ("Sat, 01 Mar 2025 12:02:00 GMT" * 10, None),
    ],
)
def test_retry_after_forms(value, seconds):
    assert parse_retry_after(value, now=NOW) == seconds


def test_retry_after_on_a_retried_answer():
    assert classify(503, {"retry-after": "90"}, now=NOW).retry_after == 90.0
    assert classify(503, {"RETRY-AFTER": "Sat, 01 Mar 2025 13:00:00 GMT"}, now=NOW).retry_after == (
        3600.0
    )
    assert classify(503, {"Retry-After": "later"}, now=NOW).retry_after is None
    assert classify(503).retry_after is None
    # Only a 429 is read for X-RateLimit-Reset, and Retry-After comes first.
    reset = {"X-RateLimit-Reset": "2025-03-01T12:10:00Z"}
    assert classify(503, reset, now=NOW).retry_after is None
    assert classify(429, {**reset, "Retry-After": "5"}, now=NOW).retry_after == 5.0
    assert classify(429, {"X-RateLimit-Reset": "garbage"}, now=NOW).retry_after is None
    # A naive now is UTC.
    naive = NOW.replace(tzinfo=None)
    assert classify(429, reset, now=naive).retry_after == 600.0


def test_retry_after_is_not_read_on_a_final_answer():
    assert classify(404, {"Retry-After": "60"}).retry_after is None
    assert classify(202, {"Retry-After": "60"}).retry_after is None


# --- the schedule ---------------------------------------------------------------------------------


class Fixed(random.Random):
    """An rng whose uniform(a, b) gives a + fraction * (b - a)."""

    def __init__(self, fraction: float):
        super().__init__(0)
        self.fraction = fraction

    def uniform(self, a, b):
        return a + self.fraction * (b - a)


LOWEST, HIGHEST = Fixed(0.0), Fixed(1.0)


def schedule(rng: random.Random) -> list[float]:
    return [next_attempt_delay(n, rng=rng) for n in range(1, MAX_ATTEMPTS)]


def test_the_schedule_without_jitter():
    assert schedule(LOWEST) == [
        16, 31, 96, 271, 640, 1311, 2416, 4111, 6576, 10015, 14656, 20751, 28576, 38431, 50640
    ]  # fmt: skip
    assert sum(schedule(LOWEST)) == 178_537  # 49.6 hours


def test_none_after_the_last_attempt():
    assert next_attempt_delay(MAX_ATTEMPTS - 1) is not None
    assert next_attempt_delay(MAX_ATTEMPTS) is None
    assert next_attempt_delay(MAX_ATTEMPTS + 5, retry_after=1) is None
    with override_settings(FEDSX={"DELIVERY_MAX_ATTEMPTS": 3}):
        assert next_attempt_delay(2) is not None
        assert next_attempt_delay(3) is None
    with pytest.raises(ValueError):
        next_attempt_delay(0)


@pytest.mark.parametrize("seed", range(50))
def test_jitter_stays_within_its_bounds_and_the_schedule_increases(seed):
    rng = random.Random(seed)
    delays = schedule(rng)
    for n, delay in enumerate(delays, start=1):
        assert n**4 + 15 <= delay <= n**4 * (1 + JITTER) + 15
    assert all(later > earlier for earlier, later in itertools.pairwise(delays))
    assert 49.5 * HOUR <= sum(delays) <= 62 * HOUR


def test_the_bounds_increase_too():
    lowest, highest = schedule(LOWEST), schedule(HIGHEST)
    assert all(low < high for low, high in zip(lowest, highest, strict=True))
    # The longest wait at one attempt is shorter than the shortest at the next.
    assert all(high < low for high, low in zip(highest, lowest[1:], strict=False))
    assert sum(highest) == 178_537 + JITTER * sum(n**4 for n in range(1, MAX_ATTEMPTS))
    assert sum(highest) < 62 * HOUR  # 61.98 hours


def test_the_window_is_about_two_days():
    rng = random.Random(1234)
    totals = [sum(schedule(rng)) for _ in range(200)]
    mean = sum(totals) / len(totals)
    assert 2.2 * DAY < mean < 2.4 * DAY  # 55.8 hours expected


def test_every_wait_is_bounded_whatever_the_attempt_count():
    with override_settings(FEDSX={"DELIVERY_MAX_ATTEMPTS": 1000}):
        assert next_attempt_delay(999, rng=HIGHEST) == MAX_BACKOFF_SECONDS
        waits = [next_attempt_delay(n, rng=LOWEST) for n in range(1, 1000)]
    assert all(later >= earlier for earlier, later in itertools.pairwise(waits))


def test_retry_after_is_honoured_up_to_the_cap():
    assert next_attempt_delay(1, retry_after=3600, rng=LOWEST) == 3600
    assert next_attempt_delay(1, retry_after=10 * DAY, rng=LOWEST) == CAP
    assert next_attempt_delay(1, retry_after=float("inf"), rng=LOWEST) == CAP
    # Never sooner than the backoff: a short Retry-After does not hurry us.
    assert next_attempt_delay(10, retry_after=5, rng=LOWEST) == 10_015
    assert next_attempt_delay(10, retry_after=-5, rng=LOWEST) == 10_015
    assert next_attempt_delay(10, retry_after=float("nan"), rng=LOWEST) == 10_015
    with override_settings(FEDSX={"DELIVERY_RETRY_AFTER_CAP_SECONDS": 60}):
        assert next_attempt_delay(1, retry_after=3600, rng=LOWEST) == 60


def test_a_huge_retry_after_is_capped_end_to_end():
    wait = classify(429, {"Retry-After": "9" * 5000}).retry_after
    assert next_attempt_delay(1, retry_after=wait, rng=LOWEST) == CAP
