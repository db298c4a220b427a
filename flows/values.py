"""What a flow may store: plain JSON, checked before anything is written.

A value that would not survive a round trip through the database unchanged (a tuple comes
back a list, a datetime does not come back at all, Postgres refuses NaN and U+0000) is
refused where it is handed in, so a replay always sees what the first run saw.
"""

from __future__ import annotations

import math
from typing import Any

MAX_DEPTH = 100
# Integers the log reads back as integers: orjson reads no wider ones (a wider one came back
# a float, or failed to load at all, and with it every later resume of the instance).
MIN_INT, MAX_INT = -(2**63), 2**64 - 1
# From here on a float is written with an exponent (1e16), which Postgres's jsonb keeps as
# the plain number 10000000000000000, read back as an int: a replay would see another type.
INTEGRAL_FLOAT_LIMIT = 1e16


class NotJSON(ValueError):
    """The value is not plain JSON; the message says where and why."""


def check_json(value: Any, what: str = "value") -> Any:
    """Return ``value`` unchanged if it is plain JSON, else raise :class:`NotJSON`."""
    _check(value, what, 0)
    return value


def _check(value: Any, where: str, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise NotJSON(f"{where} is nested deeper than {MAX_DEPTH} levels")
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, int):
        if not MIN_INT <= value <= MAX_INT:
            raise NotJSON(f"{where} is an integer outside 64 bits, which would not come back")
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise NotJSON(f"{where} is {value!r}, which JSON cannot hold")
        if value.is_integer() and abs(value) >= INTEGRAL_FLOAT_LIMIT:
            raise NotJSON(
                f"{where} is {value!r}, which the database keeps as {int(value)}: it would come"
                " back an integer (store an int, or a string)"
            )
        return
    if isinstance(value, str):
        _check_text(value, where)
        return
    if isinstance(value, list):
        for i, item in enumerate(value):
            _check(item, f"{where}[{i}]", depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise NotJSON(f"{where} has a non-string key {key!r}")
            _check_text(key, f"{where} key {key!r}")
            _check(item, f"{where}[{key!r}]", depth + 1)
        return
    raise NotJSON(f"{where} is a {type(value).__name__}, not JSON")


def _check_text(text: str, where: str) -> None:
    if "\x00" in text:
        raise NotJSON(f"{where} contains U+0000, which the database cannot store")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise NotJSON(f"{where} contains a lone surrogate") from None
