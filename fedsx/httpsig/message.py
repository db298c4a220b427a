"""The request as the signature layer sees it: method, raw target, headers, raw body."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

HeaderFields = Mapping[str, str] | Iterable[tuple[str, str]]

# Characters left alone when a decoded WSGI PATH_INFO is percent-encoded again.
_PATH_SAFE = "/:@!$&'()*+,;=-._~%"


def _text(value: str | bytes) -> str:
    if type(value) is str:
        return value
    # Header bytes are Latin-1 on the wire side of WSGI; keep them byte-for-byte.
    return value.decode("latin-1") if isinstance(value, bytes | bytearray) else str(value)


class Headers(Mapping[str, str]):
    """Read-only, case-insensitive header fields.

    Each field line is trimmed of surrounding spaces and tabs; repeated lines of one field
    are joined with ``", "`` in the order received, which is the value both draft-cavage and
    RFC 9421 sign. The separate lines stay available for RFC 9421's ``;bs`` parameter.
    """

    __slots__ = ("_combined", "_lines")

    def __init__(self, fields: HeaderFields = ()):
        items = fields.items() if isinstance(fields, Mapping) else fields
        lines: dict[str, list[str]] = {}
        for name, value in items:
            lines.setdefault(_text(name).strip().lower(), []).append(_text(value).strip(" \t"))
        self._lines = {name: tuple(values) for name, values in lines.items()}
        self._combined = {name: ", ".join(values) for name, values in lines.items()}

    def __getitem__(self, name: str) -> str:
        return self._combined[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._combined

    def __iter__(self) -> Iterator[str]:
        return iter(self._combined)

    def __len__(self) -> int:
        return len(self._combined)

    def lines(self, name: str) -> tuple[str, ...]:
        """The separate field lines of ``name`` (empty if absent)."""
        return self._lines.get(name.lower(), ())

    def __repr__(self) -> str:
        return f"Headers({self._combined!r})"


@dataclass(frozen=True)
class HttpRequest:
    """An inbound request: ``path`` is the request target as received (path, ``?``, query)."""

    method: str
    path: str
    headers: Headers
    body: bytes = b""
    # Body digests by hashlib name, computed once even if both the digest check and the
    # signature check ask for them.
    _digests: dict[str, bytes] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def build(
        cls, method: str, path: str, headers: HeaderFields = (), body: bytes | None = b""
    ) -> HttpRequest:
        return cls(str(method), str(path), Headers(headers), bytes(body or b""))

    @classmethod
    def from_wsgi(cls, environ: Mapping[str, Any], body: bytes | None) -> HttpRequest:
        """From a WSGI environ (Django's ``request.META``) and the raw body bytes.

        The target is the raw one when the server exposes it (gunicorn's ``RAW_URI``,
        uWSGI's ``REQUEST_URI``); otherwise it is rebuilt from the decoded ``PATH_INFO``.
        Without a Host header the authority is rebuilt from ``SERVER_NAME``/``SERVER_PORT``
        as PEP 3333 does. NB: WSGI servers join repeated header lines with ``","``, not
        ``", "``, so a signature over a repeated field will not verify behind them.
        """
        headers = [
            (key[5:].replace("_", "-"), value)
            for key, value in environ.items()
            if isinstance(key, str) and key.startswith("HTTP_")
        ]
        for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            if environ.get(key):
                headers.append((key.replace("_", "-"), environ[key]))
        if "HTTP_HOST" not in environ and environ.get("SERVER_NAME"):
            headers.append(("Host", _server_authority(environ)))
        return cls.build(environ.get("REQUEST_METHOD", "GET"), _wsgi_target(environ), headers, body)

    @property
    def path_only(self) -> str:
        """The path without the query (``@path``; ``/`` if empty)."""
        return self.path.partition("?")[0] or "/"

    @property
    def query(self) -> str | None:
        """The query without its ``?``; None when the target has no ``?``."""
        _, mark, query = self.path.partition("?")
        return query if mark else None

    def body_digest(self, algorithm: str) -> bytes:
        """``hashlib`` digest of the raw body (``"sha256"`` or ``"sha512"``), memoised."""
        digest = self._digests.get(algorithm)
        if digest is None:
            digest = self._digests[algorithm] = hashlib.new(algorithm, self.body).digest()
        return digest


def _server_authority(environ: Mapping[str, Any]) -> str:
    port = str(environ.get("SERVER_PORT", ""))
    default = {"http": "80", "https": "443"}.get(environ.get("wsgi.url_scheme", "http"))
    name = str(environ["SERVER_NAME"])
    return f"{name}:{port}" if port and port != default else name


def _wsgi_target(environ: Mapping[str, Any]) -> str:
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if isinstance(raw, str) and raw:
        if raw.startswith(("http://", "https://")):  # absolute-form target
            parts = urlsplit(raw)
            return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return raw
    path = _text(environ.get("SCRIPT_NAME", "")) + _text(environ.get("PATH_INFO", ""))
    target = quote(path.encode("latin-1", "replace"), safe=_PATH_SAFE) or "/"
    query = environ.get("QUERY_STRING")
    return f"{target}?{query}" if query else target
