"""What both signature families share: the parsed signature and the freshness window."""

from __future__ import annotations

import email.utils
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from .errors import SignatureError
from .keys import PublicKey
from .message import HttpRequest

# Timestamps outside [0, 2**33) (about year 2242) are refused as malformed rather than
# handed to datetime, which overflows on huge values.
MAX_TIMESTAMP = 2**33
# Methods whose requests carry content: their signature must cover its digest.
METHODS_WITH_CONTENT = frozenset({"POST", "PUT", "PATCH"})


def requires_digest(request: HttpRequest) -> bool:
    return bool(request.body) or request.method.upper() in METHODS_WITH_CONTENT


def timestamp(value: int, name: str) -> datetime:
    if not 0 <= value < MAX_TIMESTAMP:
        raise SignatureError("malformed_signature", f"{name} is not a plausible timestamp")
    return datetime.fromtimestamp(value, UTC)


# IMF-fixdate, what every server sends: "Sun, 06 Nov 1994 08:49:37 GMT". Read directly,
# since email.utils costs ~10x more; other forms (RFC 850, asctime, offsets) go there.
_IMF_FIXDATE = re.compile(
    r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), ([0-9]{2}) "
    r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) ([0-9]{4}) "
    r"([0-9]{2}):([0-9]{2}):([0-9]{2}) GMT"
)
_MONTHS = {
    m: i
    for i, m in enumerate(
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"], 1
    )
}


def parse_http_date(value: str) -> datetime:
    match = _IMF_FIXDATE.fullmatch(value)
    if match:
        day, month, year, hour, minute, second = match.groups()
        try:
            return datetime(
                int(year), _MONTHS[month], int(day), int(hour), int(minute), int(second), tzinfo=UTC
            )
        except ValueError as exc:  # 31 Feb, 25:00:00, ...
            raise SignatureError("invalid_date", "the Date header is not an HTTP date") from exc
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError) as exc:
        raise SignatureError("invalid_date", "the Date header is not an HTTP date") from exc
    if parsed is None:  # some Python versions return None instead of raising
        raise SignatureError("invalid_date", "the Date header is not an HTTP date")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def format_http_date(moment: datetime) -> str:
    return email.utils.format_datetime(aware(moment).astimezone(UTC), usegmt=True)


def aware(moment: datetime) -> datetime:
    """A naive datetime is taken to be UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Window:
    """Accepted signing times: at most ``max_skew`` s ahead of ``now``, ``max_age`` s behind."""

    now: datetime
    max_skew: int
    max_age: int

    def check(self, moment: datetime, what: str) -> None:
        delta = (moment - aware(self.now)).total_seconds()
        if delta > self.max_skew:
            raise SignatureError("date_out_of_window", f"{what} is {int(delta)} s in the future")
        if -delta > self.max_age:
            raise SignatureError("date_out_of_window", f"{what} is {int(-delta)} s old")

    def check_expires(self, expires: datetime) -> None:
        if expires < aware(self.now):
            raise SignatureError("signature_expired", "the signature's expires time has passed")


@dataclass(frozen=True, kw_only=True)
class ParsedSignature:
    """One signature found on a request, as ``parse_signature`` returns it.

    ``covered`` lists what is signed as the scheme names it: header names and
    ``(request-target)``-style pseudo headers for draft-cavage, serialized component ids
    (``'"@method"'``) for RFC 9421. ``created``/``expires`` are set only when signed.
    """

    scheme: str  # "cavage" | "rfc9421"
    key_id: str
    algorithm: str | None  # as sent; None when the key decides
    covered: tuple[str, ...]
    created: datetime | None
    expires: datetime | None
    signature: bytes
    label: str | None = None  # RFC 9421 label of this signature
    labels: tuple[str, ...] = ()  # RFC 9421: every label on the request, in order

    def check_coverage(self, request: HttpRequest) -> None:
        """Raise ``headers_not_covered`` unless the signature covers what policy requires."""
        raise NotImplementedError

    def covers(self, name: str) -> bool:
        raise NotImplementedError

    def check_signature(self, request: HttpRequest, key: PublicKey, *, scheme: str) -> None:
        """The cryptographic check alone (no policy, no clock); ``bad_signature`` if it fails."""
        raise NotImplementedError

    def check_freshness(self, request: HttpRequest, window: Window) -> None:
        if self.created is not None:
            window.check(self.created, "the signature's created time")
        if self.covers("date"):
            date = request.headers.get("date")
            if date is None:
                raise SignatureError("headers_not_covered", "the signed Date header is absent")
            window.check(parse_http_date(date), "the Date header")
        if self.expires is not None:
            window.check_expires(self.expires)
