"""The admin pages and actions, through the Django test client."""

import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse

from flows import flow, store
from flows.definitions import sync_definitions
from flows.models import FlowInstance

pytestmark = pytest.mark.django_db


def change_url(pk):
    return reverse("admin:flows_flowinstance_change", args=[pk])


CHANGELIST = reverse("admin:flows_flowinstance_changelist")


@pytest.fixture
def instances():
    @flow("test-admin-crash")
    def crash(ctx, input):
        ctx.step("fetch", lambda: {"html": "<b>x</b>"})
        raise ValueError("bad <script>")

    waiting, _ = store.start("approval", {"actor": "<i>alice</i>"})
    done, _ = store.start("approval", {})
    store.resume(done, {"ok": True})
    crashed, _ = store.start("test-admin-crash", {})
    sync_definitions()
    return {"waiting": waiting, "done": done, "crashed": crashed}


def test_definitions_show_code_hash_and_counts_by_status(admin_client, instances):
    page = admin_client.get(reverse("admin:flows_flowdefinition_changelist"))
    assert page.status_code == 200
    html = page.content.decode()
    approval = store.registration("approval")
    assert approval.code_hash[:12] in html and "as registered" in html
    assert "?flow_name=approval&amp;status__exact=suspended" in html
    row = next(d for d in page.context["cl"].result_list if d.name == "approval")
    assert (row.n_suspended, row.n_done, row.n_crashed) == (1, 1, 0)


def test_instance_list_filters_and_search(admin_client, instances):
    def ids(**params):
        page = admin_client.get(CHANGELIST, params)
        assert page.status_code == 200
        return sorted(i.pk for i in page.context["cl"].result_list)

    assert ids() == sorted(instances.values())
    assert ids(status__exact="crashed") == [instances["crashed"]]
    assert ids(flow_name="approval") == sorted([instances["waiting"], instances["done"]])
    assert ids(q=str(instances["done"])) == [instances["done"]]
    assert ids(q="approval") == [instances["waiting"]]  # the tag it waits on
    assert ids(q="no such thing") == []
    assert ids(q="²") == [] and ids(q="9" * 20) == []  # digits int() refuses, too big
    instance = FlowInstance.objects.get(pk=instances["done"])
    day = instance.created_at
    by_date = ids(created_at__year=day.year, created_at__month=day.month, created_at__day=day.day)
    assert instances["done"] in by_date


def test_instance_page_shows_the_timeline_escaped(admin_client, instances):
    page = admin_client.get(change_url(instances["crashed"]))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="flow-timeline"' in html
    assert [(e.seq, e.kind, e.tag) for e in page.context["log_entries"]] == [
        (0, "step", "fetch"),
        (1, "error", ""),
    ]
    assert "&lt;b&gt;x&lt;/b&gt;" in html and "<b>x</b>" not in html
    assert "bad &lt;script&gt;" in html and "bad <script>" not in html
    assert 'id="flow-retry"' in html and 'id="flow-resume"' not in html
    waiting = admin_client.get(change_url(instances["waiting"])).content.decode()
    assert 'id="flow-resume"' in waiting and "&lt;i&gt;alice&lt;/i&gt;" in waiting


def test_resume_with_a_json_value(admin_client, instances):
    pk = instances["waiting"]
    page = admin_client.get(change_url(pk))
    assert page.context["resume_form"]["at"].value() == 0  # the log length it shows
    answer = admin_client.post(
        change_url(pk), {"_flow_action": "resume", "at": "0", "value": '{"by": "op"}'}, follow=True
    )
    assert answer.status_code == 200
    assert f"Instance {pk} resumed: done" in answer.content.decode()
    assert store.status(pk).value == {"approved": {"by": "op"}}


def test_a_second_submit_of_a_resume_does_not_answer_the_next_wait(admin_client):
    from flows import flow
    from flows.registry import unregister_flow

    @flow("test.two_waits")
    def two_waits(ctx, input):
        return [ctx.wait("approve-payment"), ctx.wait("approve-shipping")]

    try:
        pk, _ = store.start("test.two_waits", {})
        first = {"_flow_action": "resume", "at": "0", "value": "true"}
        admin_client.post(change_url(pk), first)
        again = admin_client.post(change_url(pk), {**first, "value": "false"}, follow=True)
        assert "has moved on since" in again.content.decode()
        assert store.status(pk).status == "suspended"  # still waiting on approve-shipping
        assert FlowInstance.objects.get(pk=pk).log_length == 1
    finally:
        unregister_flow("test.two_waits")


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("{bad", "not valid JSON"),
        ("NaN", "NaN is not JSON"),
        ("", "This field is required"),
    ],
)
def test_bad_json_is_a_form_error_and_changes_nothing(admin_client, instances, text, error):
    pk = instances["waiting"]
    page = admin_client.post(change_url(pk), {"_flow_action": "resume", "value": text})
    assert page.status_code == 200
    assert error in str(page.context["resume_form"].errors["value"])
    assert error in page.content.decode()
    assert store.status(pk).status == "suspended"
    assert FlowInstance.objects.get(pk=pk).log_length == 0


def test_cancel_and_retry(admin_client, instances):
    crashed = instances["crashed"]

    @flow("test-admin-crash")
    def fixed(ctx, input):
        return ctx.step("fetch", lambda: "never runs again")

    page = admin_client.post(change_url(crashed), {"_flow_action": "retry"}, follow=True)
    assert f"Instance {crashed} retried: done" in page.content.decode()
    assert store.status(crashed).value == {"html": "<b>x</b>"}

    waiting = instances["waiting"]
    admin_client.post(change_url(waiting), {"_flow_action": "cancel"})
    assert store.status(waiting).status == "cancelled"
    page = admin_client.post(change_url(waiting), {"_flow_action": "cancel"}, follow=True)
    assert f"Instance {waiting} was not cancelled: instance {waiting} was already cancelled" in (
        page.content.decode()
    )


def test_actions_need_the_change_permission(client, instances):
    viewer = User.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_flowinstance"))
    client.force_login(viewer)
    pk = instances["waiting"]
    page = client.get(change_url(pk))
    assert page.status_code == 200 and 'id="flow-resume"' not in page.content.decode()
    refused = client.post(change_url(pk), {"_flow_action": "resume", "value": "true"})
    assert refused.status_code == 403
    assert store.status(pk).status == "suspended"


@pytest.mark.parametrize(
    "action, which, status", [("cancel", "waiting", "suspended"), ("retry", "crashed", "crashed")]
)
def test_cancel_and_retry_need_the_change_permission(client, instances, action, which, status):
    viewer = User.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_flowinstance"))
    client.force_login(viewer)
    pk = instances[which]
    assert client.post(change_url(pk), {"_flow_action": action}).status_code == 403
    assert store.status(pk).status == status


def test_instances_cannot_be_added_or_edited_by_hand(admin_client, instances):
    assert admin_client.get(reverse("admin:flows_flowinstance_add")).status_code == 403
    pk = instances["waiting"]
    admin_client.post(change_url(pk), {"status": "done", "flow_name": "x"})
    assert FlowInstance.objects.get(pk=pk).status == "suspended"


def test_wake_now_fires_a_timer_and_the_page_shows_what_it_waits_for(admin_client):
    pk, _ = store.start("timer", {"seconds": 3600})
    page = admin_client.get(change_url(pk)).content.decode()
    assert "Wake now" in page and "sleeping until" in page and "s left)" in page
    assert 'id="flow-resume"' not in page  # a timer is not answered by an operator
    woken = admin_client.post(change_url(pk), {"_flow_action": "wake"}, follow=True)
    assert f"Instance {pk} woken: done" in woken.content.decode()
    assert set(store.status(pk).value) == {"due", "woke"}
