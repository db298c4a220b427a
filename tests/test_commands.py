from io import StringIO

import pytest
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from django.core.management import CommandError, call_command

from fedsx.models import Actor


def run(*args):
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue().strip()


@pytest.mark.django_db
def test_create_actor_prints_id_and_makes_a_2048_bit_key():
    assert run("create_actor", "alice") == "http://testserver/actors/alice"
    actor = Actor.objects.get(username="alice", is_local=True)
    key = load_pem_private_key(actor.private_key_pem.encode(), password=None)
    assert key.key_size == 2048
    assert actor.key_id == "http://testserver/actors/alice#main-key"


@pytest.mark.django_db
def test_create_actor_duplicate_is_a_clear_error():
    run("create_actor", "alice")
    with pytest.raises(CommandError, match="already exists"):
        run("create_actor", "alice")
    assert Actor.objects.filter(username="alice").count() == 1


@pytest.mark.django_db
def test_create_actor_exists_ok_keeps_the_key():
    run("create_actor", "alice")
    pem = Actor.objects.get(username="alice").public_key_pem
    assert run("create_actor", "alice", "--exists-ok") == "http://testserver/actors/alice"
    assert Actor.objects.get(username="alice").public_key_pem == pem


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["", ".bad", "has space", "a/b", "x" * 65, "ünï"])
def test_create_actor_invalid_name_is_a_clear_error(name):
    with pytest.raises(CommandError, match="invalid actor name"):
        run("create_actor", name)
    assert not Actor.objects.exists()
