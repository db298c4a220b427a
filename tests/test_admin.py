import pytest
from django.urls import reverse

from fedsx.blocks import is_blocked
from fedsx.models import Activity, Actor, DomainBlock, Follow, InboxEntry, OutboxEntry


@pytest.fixture
def records(demo):
    remote = Actor.objects.create(
        ap_id="https://r.example/u/bob", username="bob", domain="r.example"
    )
    activity = Activity.objects.create(
        ap_id="https://r.example/a/1",
        activity_cid="bcid1",
        type="Follow",
        actor=remote.ap_id,
        object_id=demo.ap_id,
        payload={"type": "Follow", "note": "<script>x</script>"},
    )
    InboxEntry.objects.create(actor=demo, seq=1, activity=activity)
    OutboxEntry.objects.create(actor=demo, seq=1, activity=activity)
    Follow.objects.create(follower=remote, following=demo)
    DomainBlock.objects.create(domain="Spam.Example")
    return activity


MODELS = [Actor, Activity, InboxEntry, OutboxEntry, Follow, DomainBlock]


@pytest.mark.django_db
@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_every_model_has_a_changelist_and_change_page(admin_client, records, model):
    meta = model._meta
    url = reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist")
    assert admin_client.get(url).status_code == 200
    assert admin_client.get(url, {"q": "bob"}).status_code == 200
    obj = model.objects.first()
    change = reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[obj.pk])
    assert admin_client.get(change).status_code == 200


@pytest.mark.django_db
def test_activity_page_is_read_only_pretty_json(admin_client, records):
    url = reverse("admin:fedsx_activity_change", args=[records.pk])
    body = admin_client.get(url).content.decode()
    assert "<pre" in body
    assert "&quot;type&quot;: &quot;Follow&quot;" in body
    assert "<script>x</script>" not in body  # escaped
    assert admin_client.get(reverse("admin:fedsx_activity_add")).status_code == 403
    response = admin_client.post(url, {"type": "Like"})
    assert response.status_code == 403
    assert Activity.objects.get(pk=records.pk).type == "Follow"


@pytest.mark.django_db
def test_actor_page_never_shows_the_private_key(admin_client, demo):
    body = admin_client.get(reverse("admin:fedsx_actor_change", args=[demo.pk])).content.decode()
    assert "PRIVATE KEY" not in body
    assert "BEGIN PUBLIC KEY" in body


@pytest.mark.django_db
def test_domain_block_matches_subdomains(records):
    assert is_blocked("spam.example")
    assert is_blocked("mail.spam.example:8443")
    assert not is_blocked("notspam.example")
    DomainBlock.objects.filter(domain="spam.example").delete()
    assert not is_blocked("spam.example")


@pytest.fixture
def relayed(records, demo):
    """A second activity, delivered by a relay rather than by its actor."""
    activity = Activity.objects.create(
        ap_id="https://r.example/a/2",
        activity_cid="bcid2",
        type="Create",
        actor="https://r.example/u/bob",
        forwarded_by="https://relay.example/actor",
        payload={"type": "Create"},
    )
    InboxEntry.objects.create(actor=demo, seq=2, activity=activity)
    return activity


@pytest.mark.django_db
def test_activity_page_shows_who_forwarded_it(admin_client, relayed):
    body = admin_client.get(reverse("admin:fedsx_activity_change", args=[relayed.pk])).content
    assert b"https://relay.example/actor" in body
    listed = admin_client.get(reverse("admin:fedsx_activity_changelist"), {"forwarded": "yes"})
    assert list(listed.context["cl"].result_list) == [relayed]


@pytest.mark.django_db
def test_inbox_entries_show_and_filter_forwarded_ones(admin_client, records, relayed):
    url = reverse("admin:fedsx_inboxentry_changelist")
    everything = admin_client.get(url)
    assert b"https://relay.example/actor" in everything.content  # the column
    assert everything.context["cl"].result_count == 2
    forwarded = admin_client.get(url, {"forwarded": "yes"}).context["cl"].result_list
    assert [entry.activity for entry in forwarded] == [relayed]
    plain = admin_client.get(url, {"forwarded": "no"}).context["cl"].result_list
    assert [entry.activity for entry in plain] == [records]
