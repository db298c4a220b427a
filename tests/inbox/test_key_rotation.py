"""Key rotation honoured at once (issue 12, item 1): a rotated key is refetched on the
next delivery, one fetch per key in flight, and key fetches per host are rate-limited."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from fedsx import keys
from fedsx.models import Actor

from .helpers import deliver
from .test_gate import INBOX, follow
from .test_keys import actor_document, sender_at


def test_a_rotated_key_is_accepted_seconds_after_the_last_fetch(client, demo, keyserver):
    old = sender_at(keyserver.origin, "bob", label="old")
    new = sender_at(keyserver.origin, "bob", label="new")
    keyserver.serve("/users/bob", actor_document(keyserver.origin, "bob", old.public_pem))
    assert deliver(client, INBOX, follow(old), old).status_code == 202
    # Fetched a minute ago: the old 300-second interval refused the rotated key here.
    from datetime import timedelta

    from django.utils import timezone

    Actor.objects.filter(ap_id=old.ap_id).update(
        key_fetched_at=timezone.now() - timedelta(seconds=60)
    )
    keys.forget()
    keyserver.serve("/users/bob", actor_document(keyserver.origin, "bob", new.public_pem))
    assert deliver(client, INBOX, follow(new, n=2), new).status_code == 202
    assert keyserver.hits["/users/bob"] == 2


@pytest.mark.django_db(transaction=True)
def test_concurrent_deliveries_with_a_rotated_key_share_one_fetch(demo, keyserver):
    if connection.vendor != "postgresql":
        pytest.skip("concurrent sessions need Postgres (CI runs it)")
    old = sender_at(keyserver.origin, "bob", label="old")
    new = sender_at(keyserver.origin, "bob", label="new")
    keyserver.serve("/users/bob", actor_document(keyserver.origin, "bob", new.public_pem))
    stale = keys.VerificationKey(
        f"{old.ap_id}#main-key", old.ap_id, old_key := _public(old), None, local=False
    )
    assert old_key is not None
    results = []

    def refetch():
        try:
            results.append(keys.refetch_if_stale(stale))
        finally:
            connection.close()

    threads = [threading.Thread(target=refetch) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert keyserver.hits["/users/bob"] == 1  # one fetch in flight, the others waited
    assert len(results) == 5 and all(r is not None for r in results)
    assert {r.key_id for r in results} == {f"{new.ap_id}#main-key"}


def test_key_fetches_per_host_are_rate_limited_with_503(client, demo, keyserver, settings):
    settings.FEDSX = {**settings.FEDSX, "KEY_FETCH_BURST": 3, "KEY_FETCHES_PER_HOST_PER_MINUTE": 1}
    statuses = []
    for n in range(5):  # ever-new keyIds on one host
        sender = sender_at(keyserver.origin, f"u{n}")
        keyserver.serve(
            f"/users/u{n}", actor_document(keyserver.origin, f"u{n}", sender.public_pem)
        )
        statuses.append(deliver(client, INBOX, follow(sender, n=n), sender))
    assert [r.status_code for r in statuses] == [202, 202, 202, 503, 503]
    assert statuses[3].json()["error"] == "key_unavailable"
    assert "Retry-After" in statuses[3].headers
    assert sum(keyserver.hits.values()) == 3  # the server was not asked past the budget


def _public(sender):
    from fedsx.httpsig import load_public_key

    return load_public_key(sender.public_pem)


def _rotated_dave(origin: str) -> tuple[str, str, str]:
    """dave stored with his old assertion key (fetched an hour ago), serving a new one:
    (method id, old multibase, new multibase)."""
    from datetime import timedelta

    from django.utils import timezone

    from fedsx import proofs
    from fedsx.keys import store_actor

    from .test_forwarded import dave_document

    _, old = proofs.generate_keypair()
    _, new = proofs.generate_keypair()
    stale = dave_document(origin, old)
    store_actor(stale["id"], None, "", stale)
    Actor.objects.filter(ap_id=stale["id"]).update(fetched_at=timezone.now() - timedelta(hours=1))
    return f"{stale['id']}#ed25519-key", old, new


def test_two_proofs_after_a_rotation_fetch_the_actor_document_once(demo, keyserver):
    """Neither proof has verified yet (so nothing is stored): the second refetch within the
    interval shares the first's answer, as HTTP signature keys do."""
    from .test_forwarded import dave_document

    method, _, new = _rotated_dave(keyserver.origin)
    keyserver.serve("/users/dave", dave_document(keyserver.origin, new))
    first = keys.assertion_key(method, refetch=True)
    second = keys.assertion_key(method, refetch=True)
    assert (first.multibase, second.multibase) == (new, new)
    assert keyserver.hits["/users/dave"] == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_proofs_after_a_rotation_share_one_fetch(demo, keyserver):
    if connection.vendor != "postgresql":
        pytest.skip("concurrent sessions need Postgres (CI runs it)")
    from .test_forwarded import dave_document

    method, _, new = _rotated_dave(keyserver.origin)
    keyserver.serve("/users/dave", dave_document(keyserver.origin, new))
    results = []

    def refetch():
        try:
            results.append(keys.assertion_key(method, refetch=True).multibase)
        finally:
            connection.close()

    threads = [threading.Thread(target=refetch) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert results == [new] * 5
    assert keyserver.hits["/users/dave"] == 1  # one fetch in flight, the others waited
