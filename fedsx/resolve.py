"""Finding remote actors: by handle through WebFinger, or by id, fetched through the
guarded client and stored as ``Actor`` rows (with their key, so their deliveries verify
without another fetch).

``resolve_actor("@alice@example.com")`` (or ``acct:alice@example.com``, or an actor URL)
is what ``manage.py follow`` and the ``follow`` flow call; ``actor_by_id(url)`` is what the
outbox calls for an addressed actor it does not know yet.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from .client import FetchError, allowlist
from .conf import fedsx_settings
from .fetch import fetch_json
from .keys import KeyUnavailable, key_in_document, store_actor
from .models import Actor, host_of

ACTOR_TYPES = frozenset({"Person", "Service", "Application", "Group", "Organization"})
HANDLE = re.compile(r"^(?:acct:|@)?(?P<user>[^@\s/]+)@(?P<host>[^@\s/]+)$")


class ResolveError(Exception):
    """An actor that could not be found; ``code`` is stable, ``detail`` says why."""

    def __init__(self, code: str, detail: str):
        super().__init__(f"{code}: {detail}")
        self.code, self.detail = code, detail


def resolve_actor(target: str) -> Actor:
    """The actor named by a handle (``@user@host``, ``user@host``, ``acct:user@host``) or
    an actor id; local actors are found without a fetch."""
    target = target.strip()
    if target.startswith(("https://", "http://")):
        return actor_by_id(target)
    match = HANDLE.match(target)
    if match is None:
        raise ResolveError("bad_handle", f"{target!r} is neither @user@host nor a URL")
    user, host = match["user"], match["host"].lower()
    local = Actor.objects.filter(is_local=True, username=user, domain=host).first()
    if local is not None:
        return local
    return actor_by_id(webfinger(user, host))


def webfinger(user: str, host: str) -> str:
    """The actor id WebFinger gives for ``user@host``. Over https; a host in the fetch
    allowlist (a peer on loopback, for development) is asked over http when https fails."""
    resource = quote(f"acct:{user}@{host}", safe=":@")
    schemes = ["https", "http"] if _allowlisted(host) else ["https"]
    last: FetchError | None = None
    for scheme in schemes:
        try:
            document = fetch_json(f"{scheme}://{host}/.well-known/webfinger?resource={resource}")
            break
        except FetchError as exc:
            last = exc
    else:
        raise ResolveError(last.code, f"WebFinger of {user}@{host}: {last.detail}")
    for link in document.get("links") or []:
        if (
            isinstance(link, dict)
            and link.get("rel") == "self"
            and "json" in str(link.get("type", ""))
            and isinstance(link.get("href"), str)
        ):
            return link["href"]
    raise ResolveError("no_actor_link", f"WebFinger of {user}@{host} names no actor")


def _allowlisted(host: str) -> bool:
    names = allowlist()
    return host in names or host.rsplit(":", 1)[0] in names


def actor_by_id(ap_id: str, *, refresh: bool = False) -> Actor:
    """The actor with this id: the stored one, else fetched (its document must be an actor
    served at its own id, with an inbox) and stored with its key."""
    if not refresh:
        known = Actor.objects.filter(ap_id=ap_id).first()
        if known is not None:
            return known
    if ap_id.startswith(f"{fedsx_settings.BASE_URL}/"):
        raise ResolveError("unknown_local", f"no local actor has the id {ap_id}")
    try:
        document = fetch_json(ap_id)
    except FetchError as exc:
        raise ResolveError(exc.code, exc.detail) from None
    _check_actor_document(ap_id, document)
    key = document.get("publicKey")
    key = key[0] if isinstance(key, list) and key else key
    key_id = key.get("id") if isinstance(key, dict) else None
    try:
        owner, pem, _ = key_in_document(document, key_id or "")
    except KeyUnavailable:
        owner, pem, key_id = ap_id, "", None
    if owner != ap_id:
        owner, pem, key_id = ap_id, "", None
    return store_actor(ap_id, key_id, pem, document)


def _check_actor_document(ap_id: str, document: dict) -> None:
    if document.get("id") != ap_id:
        raise ResolveError("id_mismatch", f"the document at {ap_id} has another id")
    if document.get("type") not in ACTOR_TYPES:
        raise ResolveError("not_an_actor", f"{ap_id} is a {document.get('type')!r}")
    inbox = document.get("inbox")
    if not isinstance(inbox, str) or host_of(inbox) != host_of(ap_id):
        raise ResolveError("no_inbox", f"{ap_id} has no inbox on its own host")
