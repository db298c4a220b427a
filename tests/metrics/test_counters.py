"""The counters move where things happen: a signed POST to the inbox, a delivery to a
loopback receiver, a trigger starting a flow that crashes, a flow resumed."""

from __future__ import annotations

import pytest
from django.db import transaction

from fedsx import delivery, outbox
from fedsx.models import Delivery, Host, InboxEntry
from flows import store
from tests.inbox.helpers import Sender, deliver, keypair, remote_sender
from tests.receiver import Reply
from tests.triggers.conftest import add_trigger
from triggers.pipeline import apply_entries

from .conftest import follows, remote_actor, value

pytestmark = pytest.mark.django_db
SENDER = "https://remote.example/users/bob"
N = 0


def note(actor) -> dict:
    global N
    N += 1
    return {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{SENDER}/statuses/{N}/activity",
        "type": "Create",
        "actor": SENDER,
        "to": [actor.ap_id],
        "object": {"id": f"{SENDER}/statuses/{N}", "type": "Note", "content": "hi"},
    }


def test_a_signed_post_counts_as_accepted_and_times_the_append(client, demo):
    sender = remote_sender(SENDER)
    accepted = value("fedsx_inbox_requests_total", outcome="accepted")
    appends = value("fedsx_inbox_append_seconds_count")
    response = deliver(client, "/actors/demo/inbox", note(demo), sender)
    assert response.status_code == 202
    assert value("fedsx_inbox_requests_total", outcome="accepted") == accepted + 1
    assert value("fedsx_inbox_append_seconds_count") == appends + 1


def test_a_bad_signature_counts_as_refused_and_as_a_signature_failure(client, demo):
    sender = remote_sender(SENDER)
    impostor = Sender(sender.ap_id, sender.key_id, keypair("impostor")[0], sender.public_pem)
    refused = value("fedsx_inbox_requests_total", outcome="bad_signature")
    failures = value("fedsx_inbox_signature_failures_total", reason="bad_signature")
    accepted = value("fedsx_inbox_requests_total", outcome="accepted")
    response = deliver(client, "/actors/demo/inbox", note(demo), impostor)
    assert (response.status_code, response.json()["error"]) == (401, "bad_signature")
    assert value("fedsx_inbox_requests_total", outcome="bad_signature") == refused + 1
    assert value("fedsx_inbox_signature_failures_total", reason="bad_signature") == failures + 1
    assert value("fedsx_inbox_requests_total", outcome="accepted") == accepted


def test_a_refusal_that_is_no_signature_failure_is_counted_once(client, demo):
    sender = remote_sender(SENDER)
    failures = value("fedsx_inbox_signature_failures_total", reason="digest_mismatch")
    refused = value("fedsx_inbox_requests_total", outcome="digest_mismatch")
    response = deliver(client, "/actors/demo/inbox", note(demo), sender, body=b'{"x": 1}')
    assert response.status_code == 400
    assert value("fedsx_inbox_requests_total", outcome="digest_mismatch") == refused + 1
    assert value("fedsx_inbox_signature_failures_total", reason="digest_mismatch") == failures


def test_switched_off_nothing_is_counted(client, demo, settings):
    settings.FEDSX = {**settings.FEDSX, "METRICS": False}
    sender = remote_sender(SENDER)
    accepted = value("fedsx_inbox_requests_total", outcome="accepted")
    appends = value("fedsx_inbox_append_seconds_count")
    assert deliver(client, "/actors/demo/inbox", note(demo), sender).status_code == 202
    assert value("fedsx_inbox_requests_total", outcome="accepted") == accepted
    assert value("fedsx_inbox_append_seconds_count") == appends


def test_a_trigger_firing_a_crashing_flow_counts_the_firing_the_start_and_the_crash(
    client, demo, django_capture_on_commit_callbacks
):
    add_trigger(activity_type="Create", flow_name="test.crash")
    sender = remote_sender(SENDER)
    crashed = value("fedsx_trigger_firings_total", outcome="crashed")
    starts = value("fedsx_flow_starts_total", flow="test.crash")
    crashes = value("fedsx_flow_crashes_total", flow="test.crash")
    assert deliver(client, "/actors/demo/inbox", note(demo), sender).status_code == 202
    with django_capture_on_commit_callbacks(execute=True):  # counted once committed
        assert apply_entries(InboxEntry.objects.values_list("pk", flat=True)) == 1
    assert value("fedsx_trigger_firings_total", outcome="crashed") == crashed + 1
    assert value("fedsx_flow_starts_total", flow="test.crash") == starts + 1
    assert value("fedsx_flow_crashes_total", flow="test.crash") == crashes + 1


def test_a_resumed_flow_counts_as_resumed_by_the_operator(django_capture_on_commit_callbacks):
    pk, outcome = store.start("approval", {"activity": {"type": "Follow"}, "actor": "a"})
    assert outcome.status == "suspended"
    resumes = value("fedsx_flow_resumes_total", flow="approval", kind="operator")
    with django_capture_on_commit_callbacks(execute=True):
        assert store.resume(pk, {"ok": False}).ok
    assert value("fedsx_flow_resumes_total", flow="approval", kind="operator") == resumes + 1


def test_work_rolled_back_is_not_counted(django_capture_on_commit_callbacks):
    """A transaction that rolls back (a deadlock victim the pipeline retries) counts
    nothing: its retry is what counts."""
    starts = value("fedsx_flow_starts_total", flow="approval")
    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(RuntimeError), transaction.atomic():
            store.start("approval", {"activity": {"type": "Follow"}, "actor": "a"})
            raise RuntimeError("rolled back, as a deadlock victim is")
        assert value("fedsx_flow_starts_total", flow="approval") == starts
        store.start("approval", {"activity": {"type": "Follow"}, "actor": "a"})
    assert value("fedsx_flow_starts_total", flow="approval") == starts + 1


def post_to(sender, receiver) -> Delivery:
    amy = remote_actor(receiver.url("/users/amy"), inbox=receiver.url("/users/amy/inbox"))
    follows(amy, sender)
    activity = outbox.post(sender, {"type": "Note", "content": "hi", "cc": [sender.followers_url]})
    return activity.deliveries.get()


def test_a_delivery_counts_its_outcome_attempts_and_latency(demo, receiver):
    job = post_to(demo, receiver)
    delivered = value("fedsx_delivery_attempts_total", outcome="delivered")
    requests = value("fedsx_delivery_request_seconds_count")
    latencies = value("fedsx_delivery_latency_seconds_count")
    one_attempt = value("fedsx_delivery_settled_attempts_bucket", le="1.0")
    assert delivery.deliver([job.pk]) == 1
    job.refresh_from_db()
    assert job.status == Delivery.Status.DELIVERED
    assert value("fedsx_delivery_attempts_total", outcome="delivered") == delivered + 1
    assert value("fedsx_delivery_request_seconds_count") == requests + 1
    assert value("fedsx_delivery_latency_seconds_count") == latencies + 1
    assert value("fedsx_delivery_settled_attempts_bucket", le="1.0") == one_attempt + 1


def test_a_failing_host_counts_a_retry_and_its_breaker_opening(
    demo, receiver, settings, django_capture_on_commit_callbacks
):
    settings.FEDSX = {**settings.FEDSX, "BREAKER_THRESHOLD": 1}
    receiver.script("/users/amy/inbox", Reply(503))
    job = post_to(demo, receiver)
    retries = value("fedsx_delivery_attempts_total", outcome="retry")
    opened = value("fedsx_host_state_changes_total", state="open")
    with django_capture_on_commit_callbacks(execute=True):
        assert delivery.deliver([job.pk]) == 1
    assert Host.objects.get(host=job.host).state == Host.State.OPEN
    assert value("fedsx_delivery_attempts_total", outcome="retry") == retries + 1
    assert value("fedsx_host_state_changes_total", state="open") == opened + 1
