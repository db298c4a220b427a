"""The federation dashboard, server side: its numbers for known data, the lists its links
open, who may see it, and an empty node."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from fedsx.models import Delivery, Host, InboxTally

from .conftest import staff_with

DASHBOARD = "/admin/fedsx/dashboard/"


def by_label(figures) -> dict[str, int]:
    return {f.label: f.value for f in figures}


@pytest.mark.django_db
def test_the_figures_of_known_data(client, operator, known):
    client.force_login(operator)
    response = client.get(DASHBOARD)
    assert response.status_code == 200
    context = response.context
    inbox = context["inbox"]
    assert inbox.accepted.value == known["accepted"]
    assert inbox.refused.value == known["refused"]
    assert by_label(inbox.outcomes) == known["outcomes"]
    assert len(inbox.hours) == 24
    assert inbox.hours[-1].counts == {"accepted": 7, "bad_signature": 3}
    assert inbox.hours[-3].counts == {"accepted": 2, "domain_blocked": 1}
    assert inbox.hours[0].counts == {"accepted": 5}
    assert sum(h.total for h in inbox.hours) == known["accepted"] + known["refused"]
    assert by_label(context["deliveries"]) == known["deliveries"]
    assert [row.host.host for row in context["failing_hosts"]] == known["hosts"]
    assert {r.host.host: r.held.value for r in context["failing_hosts"]} == known["held"]
    assert {r.host.host: r.pending.value for r in context["failing_hosts"]} == known["pending"]
    assert by_label(context["instances"]) == known["instances"]
    assert by_label(context["waiting"]) == known["waiting"]
    assert context["unapplied"].total.value == known["unapplied"]
    assert context["unapplied"].overdue.value == known["overdue"]
    body = response.content.decode()
    assert body.count('<svg class="fedsx-chart"') == 4  # inbox, deliveries, instances, waiting
    assert 'role="img"' in body and "<title" in body and "<desc" in body


def test_refusal_codes_beyond_the_top_five_are_summed_as_other(client, operator, known):
    from .conftest import tally

    for n, code in enumerate(["c1", "c2", "c3", "c4", "c5"]):
        tally(1, code, 10 + n)
    client.force_login(operator)
    inbox = client.get(DASHBOARD).context["inbox"]
    labels = [f.label for f in inbox.outcomes]
    assert labels == ["accepted", "c5", "c4", "c3", "c2", "c1", "other"]
    other = inbox.outcomes[-1]
    assert other.value == 4  # bad_signature 3 + domain_blocked 1
    assert inbox.refused.value == 4 + sum(range(10, 15))
    assert client.get(other.url).context["cl"].result_count == 2


def test_a_gone_actors_delete_is_charted_apart_and_is_no_refusal(client, operator, known):
    from .conftest import tally

    tally(1, "actor_gone", 6)
    client.force_login(operator)
    inbox = client.get(DASHBOARD).context["inbox"]
    assert [f.label for f in inbox.outcomes][:2] == ["accepted", "actor_gone"]
    assert by_label(inbox.outcomes)["actor_gone"] == 6
    assert inbox.accepted.value == known["accepted"]
    assert inbox.refused.value == known["refused"]


def test_settled_deliveries_count_for_a_day_pending_and_held_for_ever(client, operator, known):
    Delivery.objects.update(updated_at=timezone.now() - timedelta(hours=25))
    client.force_login(operator)
    shown = client.get(DASHBOARD).context["deliveries"]
    settled = dict.fromkeys(("delivered", "failed", "expired", "cancelled"), 0)
    assert by_label(shown) == {**known["deliveries"], **settled}
    assert [f.label for f in shown][:2] == ["pending", "held"]
    for figure in shown:  # the lists behind them agree
        assert client.get(figure.url).context["cl"].result_count == figure.value, figure


def figures_of(context):
    inbox = context["inbox"]
    yield from inbox.outcomes
    yield inbox.accepted
    yield inbox.refused
    for hour in inbox.hours:
        yield from hour.segments
    yield from context["deliveries"]
    for row in context["failing_hosts"]:
        yield row.pending
        yield row.held
    yield from context["instances"]
    yield from context["waiting"]
    yield context["unapplied"].total
    yield context["unapplied"].overdue


@pytest.mark.django_db
def test_every_number_links_to_the_list_it_counts(client, operator, known):
    client.force_login(operator)
    context = client.get(DASHBOARD).context
    checked = 0
    for figure in figures_of(context):
        response = client.get(figure.url)
        assert response.status_code == 200, figure  # an unknown filter redirects to ?e=1
        changelist = response.context["cl"]
        if changelist.model is InboxTally:
            shown = sum(row.count for row in changelist.queryset)
        else:
            shown = changelist.result_count
        assert shown == figure.value, (figure, shown)
        checked += 1
    assert checked == 33  # every figure on the page


@pytest.mark.django_db
def test_host_links_open_the_host(client, operator, known):
    client.force_login(operator)
    row = client.get(DASHBOARD).context["failing_hosts"][0]
    response = client.get(row.url)
    assert response.status_code == 200
    assert response.context["original"].host == "gone.example"


@pytest.mark.django_db
def test_staff_without_the_view_permissions_gets_403(client, known):
    client.force_login(staff_with(username="nobody"))
    assert client.get(DASHBOARD).status_code == 403


@pytest.mark.django_db
def test_anonymous_and_non_staff_are_sent_to_the_login(client, django_user_model, known):
    response = client.get(DASHBOARD)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    user = django_user_model.objects.create_user("visitor", password="pw", is_staff=False)
    client.force_login(user)
    response = client.get(DASHBOARD)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


@pytest.mark.django_db
def test_each_part_needs_its_own_view_permission(client, known):
    client.force_login(staff_with("fedsx.view_delivery"))
    response = client.get(DASHBOARD)
    assert response.status_code == 200
    assert by_label(response.context["deliveries"])["held"] == 4
    body = response.content.decode()
    assert "inbox" not in response.context and "instances" not in response.context
    assert "fedsx-inbox" not in body and "fedsx-flows" not in body and "fedsx-hosts" not in body


@pytest.mark.django_db
def test_an_empty_node_renders(client, operator):
    client.force_login(operator)
    response = client.get(DASHBOARD)
    assert response.status_code == 200
    body = response.content.decode()
    assert "No host is failing." in body
    assert response.context["inbox"].accepted.value == 0
    assert response.context["unapplied"].oldest is None
    assert body.count('<svg class="fedsx-chart"') == 4


@pytest.mark.django_db
def test_the_admin_index_links_to_the_dashboard(client, operator):
    client.force_login(operator)
    body = client.get(reverse("admin:index")).content.decode()
    assert f'href="{DASHBOARD}"' in body
    client.force_login(staff_with(username="nobody"))
    assert DASHBOARD not in client.get(reverse("admin:index")).content.decode()


@pytest.mark.django_db
def test_an_unavailable_host_with_few_failures_leads_the_failing_hosts(client, operator):
    from fedsx.dashboard.figures import FAILING_HOSTS

    for n in range(FAILING_HOSTS * 3 + 5):  # more than any cut before the sort would keep
        Host.objects.create(host=f"flaky{n}.example", state="ok", consecutive_failures=50 + n)
    Host.objects.create(host="open.example", state="open", consecutive_failures=2)
    Host.objects.create(host="gone.example", state="unavailable", consecutive_failures=1)
    client.force_login(operator)
    rows = client.get(DASHBOARD).context["failing_hosts"]
    assert len(rows) == FAILING_HOSTS
    hosts = [row.host.host for row in rows]
    assert hosts[:3] == ["gone.example", "open.example", f"flaky{FAILING_HOSTS * 3 + 4}.example"]
