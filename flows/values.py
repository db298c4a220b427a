"""What a flow may store: plain JSON, checked before anything is written.

A value that would not survive a round trip through the database unchanged (a tuple comes
back a list, a datetime does not come back at all, Postgres refuses NaN and U+0000) is
refused where it is handed in, so a replay always sees what the first run saw.
"""

from __future__ import annotations

import math
from typing import Any

MAX_DEPTH = 100
MAX_INT_BITS = 13_000  # ~3,900 digits: Python refuses to print integers beyond 4,300


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
        if value.bit_length() > MAX_INT_BITS:
            raise NotJSON(f"{where} is an integer too large to store")
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise NotJSON(f"{where} is {value!r}, which JSON cannot hold")
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
