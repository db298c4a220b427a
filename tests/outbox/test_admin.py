"""The outbox's admin pages: outbox entries, deliveries (filters, search, actions), hosts
(breaker figures, clear) and the deliveries on an activity's page."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse
from django.utils import timezone

from fedsx.models import Actor, Delivery, Host, OutboxEntry
from tests.outbox.conftest import deliveries_in_every_status

pytestmark = pytest.mark.django_db

Status = Delivery.Status
DELIVERIES = reverse("admin:fedsx_delivery_changelist")
HOSTS = reverse("admin:fedsx_host_changelist")


@pytest.fixture
def posted(demo):
    """A posted activity with one delivery in each status, to two hosts."""
    now = timezone.now()
    activity, made = deliveries_in_every_status(
        demo,
        {"type": "Create", "content": "<script>x</script>"},
        last_status=lambda status: 503 if status == Status.EXPIRED else None,
        last_error=lambda status: "HTTP 503 <b>down</b>" if status == Status.EXPIRED else "",
        delivered_at=lambda status: now if status == Status.DELIVERED else None,
    )
    OutboxEntry.objects.create(actor=demo, seq=1, activity=activity, public=True)
    Host.objects.create(host="remote.example")
    Host.objects.create(
        host="other.example",
        state=Host.State.OPEN,
        consecutive_failures=5,
        retry_at=timezone.now() + timedelta(minutes=1),
        signature_scheme="cavage",
    )
    return {"activity": activity, **made}


def listed(client, url, **params) -> list[int]:
    page = client.get(url, params)
    assert page.status_code == 200
    return sorted(row.pk for row in page.context["cl"].result_list)


def ids(*rows) -> list[int]:
    return sorted(row.pk for row in rows)


def act(client, url, action, rows):
    return client.post(
        url, {"action": action, "_selected_action": [row.pk for row in rows]}, follow=True
    )


def test_changelists_and_read_only_pages_render(admin_client, posted):
    for model in (Delivery, Host, OutboxEntry):
        meta = model._meta
        assert (
            admin_client.get(reverse(f"admin:fedsx_{meta.model_name}_changelist")).status_code
            == 200
        )
        change = reverse(f"admin:fedsx_{meta.model_name}_change", args=[model.objects.first().pk])
        page = admin_client.get(change)
        assert page.status_code == 200
        assert admin_client.post(change, {}).status_code == 403  # read-only
        assert admin_client.get(reverse(f"admin:fedsx_{meta.model_name}_add")).status_code == 403
    expired = admin_client.get(reverse("admin:fedsx_delivery_change", args=[posted["expired"].pk]))
    html = expired.content.decode()
    assert "HTTP 503 &lt;b&gt;down&lt;/b&gt;" in html and "<b>down</b>" not in html
    assert reverse("admin:fedsx_activity_change", args=[posted["activity"].pk]) in html
    assert (
        reverse("admin:fedsx_host_change", args=[Host.objects.get(host="other.example").pk]) in html
    )


def test_delivery_list_columns(admin_client, posted):
    page = admin_client.get(DELIVERIES)
    html = page.content.decode()
    for column in ("status", "host", "attempts", "last_status", "next_attempt", "delivered_at"):
        assert f'class="column-{column}' in html or f"field-{column}" in html, column
    assert "HTTP 503 &lt;b&gt;down&lt;/b&gt;" in html  # last error, escaped
    assert f"Create {posted['activity'].ap_id}" in html
    assert "delete_selected" not in html  # deliveries say what became of a post: never deleted


def test_delivery_filters_and_search(admin_client, posted):
    assert listed(admin_client, DELIVERIES) == ids(*[posted[s] for s in Status.values])
    assert listed(admin_client, DELIVERIES, status__exact="held") == ids(posted["held"])
    remote = [posted[s] for s in ("pending", "failed", "held")]
    assert listed(admin_client, DELIVERIES, host="remote.example") == ids(*remote)
    both = listed(admin_client, DELIVERIES, host="remote.example", status__exact="failed")
    assert both == ids(posted["failed"])
    assert listed(admin_client, DELIVERIES, q="Remote.Example") == ids(*remote)
    assert listed(admin_client, DELIVERIES, q=str(posted["held"].pk)) == ids(posted["held"])
    assert listed(admin_client, DELIVERIES, q="https://other.example/inbox/expired") == ids(
        posted["expired"]
    )
    assert len(listed(admin_client, DELIVERIES, q=posted["activity"].ap_id)) == len(Status.values)
    assert listed(admin_client, DELIVERIES, q="https://remote.example/") == ids(*remote)
    assert listed(admin_client, DELIVERIES, q="remote") == []  # exact, never a scan
    assert listed(admin_client, DELIVERIES, q="²") == []


def test_host_filter_stays_small_and_fast_with_a_thousand_hosts(
    admin_client, posted, django_assert_max_num_queries
):
    Host.objects.bulk_create(
        [
            Host(host=f"h{n}.example", state=Host.State.OPEN if n % 2 else Host.State.OK)
            for n in range(1000)
        ]
    )
    with django_assert_max_num_queries(12):
        page = admin_client.get(DELIVERIES)
    host_filter = next(
        f for f in page.context["cl"].filter_specs if getattr(f, "parameter_name", None) == "host"
    )
    choices = host_filter.lookup_choices
    assert len(choices) == 20
    assert choices[0] == ("other.example", "other.example")  # most failures first
    # Any host can be chosen, listed or not.
    page = admin_client.get(DELIVERIES, {"host": "remote.example"})
    assert page.status_code == 200
    host_filter = next(
        f for f in page.context["cl"].filter_specs if getattr(f, "parameter_name", None) == "host"
    )
    assert ("remote.example", "remote.example") in host_filter.lookup_choices


def test_retry_now_and_cancel_actions(admin_client, posted):
    chosen = [posted[s] for s in ("failed", "expired", "delivered")]
    page = act(admin_client, DELIVERIES, "retry_now", chosen)
    text = page.content.decode()
    assert "2 deliveries handed out again. 1 already delivered were left alone." in text
    statuses = dict(Delivery.objects.values_list("pk", "status"))
    assert statuses[posted["failed"].pk] == statuses[posted["expired"].pk] == Status.PENDING
    assert statuses[posted["delivered"].pk] == Status.DELIVERED

    page = act(
        admin_client, DELIVERIES, "cancel", [posted["held"], posted["failed"], posted["delivered"]]
    )
    assert "2 deliveries cancelled." in page.content.decode()
    statuses = dict(Delivery.objects.values_list("pk", "status"))
    assert statuses[posted["held"].pk] == statuses[posted["failed"].pk] == Status.CANCELLED
    assert statuses[posted["delivered"].pk] == Status.DELIVERED

    page = act(admin_client, DELIVERIES, "cancel", [posted["delivered"]])
    assert "Nothing cancelled" in page.content.decode()


def test_host_list_shows_breaker_figures_and_counts(admin_client, posted):
    page = admin_client.get(HOSTS)
    assert page.status_code == 200
    rows = {h.host: h for h in page.context["cl"].result_list}
    assert (rows["other.example"].n_pending, rows["other.example"].n_held) == (0, 0)
    assert (rows["remote.example"].n_pending, rows["remote.example"].n_held) == (1, 1)
    html = page.content.decode()
    assert "?host=remote.example&amp;status__exact=held" in html
    assert listed(admin_client, HOSTS, state__exact="open") == ids(
        Host.objects.get(host="other.example")
    )


def test_clear_action_releases_held_deliveries(admin_client, posted):
    Host.objects.filter(host="remote.example").update(
        state=Host.State.UNAVAILABLE,
        failing_days=7,
        unavailable_since=timezone.now(),
        retry_at=timezone.now() + timedelta(hours=1),
    )
    page = act(admin_client, HOSTS, "clear", Host.objects.filter(host="remote.example"))
    assert "1 hosts cleared, 1 held deliveries released." in page.content.decode()
    host = Host.objects.get(host="remote.example")
    assert (host.state, host.failing_days, host.unavailable_since) == (Host.State.OK, 0, None)
    assert Delivery.objects.get(pk=posted["held"].pk).status == Status.PENDING


def test_activity_page_links_its_deliveries_by_status(admin_client, posted):
    activity = posted["activity"]
    page = admin_client.get(reverse("admin:fedsx_activity_change", args=[activity.pk]))
    html = page.content.decode()
    assert f"?activity={activity.pk}&amp;status__exact=failed" in html
    assert "6 in all" in html
    assert listed(admin_client, DELIVERIES, activity=activity.pk) == ids(
        *[posted[s] for s in Status.values]
    )
    assert listed(admin_client, DELIVERIES, activity=activity.pk, status__exact="held") == ids(
        posted["held"]
    )


def test_outbox_entries_list_by_actor_and_public(admin_client, posted, demo):
    url = reverse("admin:fedsx_outboxentry_changelist")
    entry = OutboxEntry.objects.get()
    page = admin_client.get(url)
    html = page.content.decode()
    assert reverse("admin:fedsx_activity_change", args=[posted["activity"].pk]) in html
    assert listed(admin_client, url, public__exact="1") == [entry.pk]
    assert listed(admin_client, url, public__exact="0") == []
    assert listed(admin_client, url, actor=str(demo.pk)) == [entry.pk]
    remote = Actor.objects.create(ap_id="https://r.example/u/x", domain="r.example")
    actor_filter = next(
        f for f in page.context["cl"].filter_specs if getattr(f, "parameter_name", None) == "actor"
    )
    assert [value for value, _ in actor_filter.lookup_choices] == [str(demo.pk)]
    assert listed(admin_client, url, actor=str(remote.pk)) == []


def test_staff_who_may_only_view_get_no_actions(client, posted):
    user = User.objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_delivery", "view_host"])
    )
    client.force_login(user)
    page = client.get(DELIVERIES)
    assert page.status_code == 200
    assert "retry_now" not in page.content.decode()
    response = act(client, DELIVERIES, "retry_now", [posted["failed"]])
    assert response.status_code == 200
    assert Delivery.objects.get(pk=posted["failed"].pk).status == Status.FAILED
    form = client.get(HOSTS).context["action_form"]
    assert form is None or "clear" not in [name for name, _ in form.fields["action"].choices]
