"""The one exception the signature layer raises for anything a peer sent."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import ParamSpec, TypeVar

logger = logging.getLogger("fedsx.httpsig")
P = ParamSpec("P")
R = TypeVar("R")

# Codes, so that the inbox can map them to statuses without parsing text:
#   missing_signature      no Signature / Signature-Input / Authorization: Signature header
#   malformed_signature    a signature header that cannot be read, or asks for unsupported
#                          components (responses, trailers, ...)
#   unsupported_algorithm  an algorithm we do not verify (hmac, rsa-sha1, ...)
#   headers_not_covered    the signature leaves out a component our policy requires, or
#                          covers a header the request lacks
#   invalid_date           a Date header that is not an HTTP date
#   date_out_of_window     Date or created too far in the future or the past
#   signature_expired      the signature's expires is in the past
#   bad_signature          the signature does not verify with the given key
#   bad_key                a key that cannot be loaded or is unfit (type, size)
#   digest_missing         a body without a usable Digest / Content-Digest
#   digest_mismatch        a digest that does not match the body, or cannot be read
CODES = frozenset(
    {
        "missing_signature",
        "malformed_signature",
        "unsupported_algorithm",
        "headers_not_covered",
        "invalid_date",
        "date_out_of_window",
        "signature_expired",
        "bad_signature",
        "bad_key",
        "digest_missing",
        "digest_mismatch",
    }
)


class SignatureError(Exception):
    """A refusal with a stable ``code`` and a human ``detail`` (never key material)."""

    def __init__(self, code: str, detail: str, *, unexpected: bool = False):
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
        # True only when an internal error was caught by the safety net (see guard.py):
        # tests assert it never happens.
        self.unexpected = unexpected


def refuse_unexpected(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn any internal error in ``fn`` into a ``SignatureError`` instead of a 500.

    The parsers are written not to need this; it is the last line of defence of the inbox's
    front door. Such errors are logged (with traceback, no arguments) so they get fixed.
    """

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except SignatureError:
            raise
        except Exception as exc:
            logger.exception("internal error in %s", fn.__qualname__)
            raise SignatureError(
                "malformed_signature", "the signature could not be processed", unexpected=True
            ) from exc

    return wrapper
