"""Every change to the triggers reaches each process's index, however it was made."""

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from triggers.models import Firing, RegistryVersion, Trigger
from triggers.pipeline import apply_entries, apply_triggers
from triggers.registry import TriggerIndex, trigger_index

from .conftest import add_trigger, append, follow


@pytest.mark.django_db
def test_a_queryset_delete_reaches_the_index(demo):
    trigger = add_trigger()
    assert trigger_index().size == 1
    before = RegistryVersion.current()
    Trigger.objects.filter(pk=trigger.pk).delete()
    assert RegistryVersion.current() != before
    assert trigger_index().size == 0
    apply_entries([append(demo, follow()).pk])
    assert not Firing.objects.exists()


@pytest.mark.django_db
def test_a_queryset_update_reaches_the_index(demo):
    add_trigger()
    add_trigger(flow_name="test.done")
    assert trigger_index().size == 2
    assert Trigger.objects.update(enabled=False) == 2
    assert trigger_index().size == 0
    Trigger.objects.filter(flow_name="test.done").update(enabled=True)
    assert trigger_index().size == 1


@pytest.mark.django_db
def test_the_admin_delete_selected_action_reaches_the_index(client, demo):
    client.force_login(User.objects.create_superuser("admin", "a@example.org", "pw"))
    triggers = [add_trigger(), add_trigger(flow_name="test.done")]
    assert trigger_index().size == 2
    response = client.post(
        reverse("admin:triggers_trigger_changelist"),
        {"action": "delete_selected", "_selected_action": [t.pk for t in triggers], "post": "yes"},
    )
    assert response.status_code == 302
    assert not Trigger.objects.exists()
    assert trigger_index().size == 0


@pytest.mark.django_db(transaction=True)
def test_a_trigger_deleted_after_the_index_was_built_fires_nothing(demo, settings):
    settings.FEDSX = {"BASE_URL": "http://testserver", "DISPATCH_TRIGGERS": False}
    gone = add_trigger()
    kept = add_trigger(flow_name="test.done")
    stale = TriggerIndex.load()  # another process's index, built before the delete
    gone.delete()
    entry = append(demo, follow())
    (firing,) = apply_triggers(entry, stale)  # commits: no foreign-key error
    assert firing.trigger_id == kept.pk
    assert list(Firing.objects.values_list("trigger_id", flat=True)) == [kept.pk]
    entry.refresh_from_db()
    assert entry.triggers_applied_at is not None
