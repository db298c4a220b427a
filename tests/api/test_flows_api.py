"""Flow definitions and instances through the API: every operation goes through the store,
whose refusals answer 409 with their code; permissions, bad input and pagination."""

from __future__ import annotations

import json

import pytest

from flows import registry, store
from flows.definitions import sync_definitions
from flows.models import FlowInstance

from .conftest import allowed

pytestmark = pytest.mark.django_db

FLOWS = "/api/v1/flows/"
INSTANCES = "/api/v1/flow-instances/"
VIEW, ADD, CHANGE = (f"flows.{kind}_flowinstance" for kind in ("view", "add", "change"))
broken = {"yes": True}  # test.flaky crashes while this says so


def flaky(ctx, input: dict) -> str:
    if broken["yes"]:  # as if the code were fixed and deployed between tries
        raise RuntimeError("broken for now")
    return "fixed"


@pytest.fixture(autouse=True)
def test_flows():
    """Flows of these tests, forgotten after each; the project's flows stay."""
    saved = dict(registry._flows)
    registry.register_flow("test.flaky", flaky)
    registry.register_flow(
        "test.receive", lambda ctx, input: ctx.receive({"type": "Like"}, timeout=60)
    )
    broken["yes"] = True
    yield
    registry._flows.clear()
    registry._flows.update(saved)


def started(name: str = "approval", input: dict | None = None) -> int:
    pk, outcome = store.start(name, input or {})
    assert pk is not None, outcome
    return pk


def each_page(client, url: str) -> list[dict]:
    items = []
    while url:
        response = client.get(url)
        assert response.status_code == 200, response.content
        page = response.json()
        items += page["results"]
        url = page["next"]
    return items


def endpoints(pk: int) -> list[tuple[str, str, dict | None]]:
    return [
        ("get", FLOWS, None),
        ("get", f"{FLOWS}approval/", None),
        ("get", INSTANCES, None),
        ("post", INSTANCES, {"flow": "approval"}),
        ("get", f"{INSTANCES}{pk}/", None),
        ("get", f"{INSTANCES}{pk}/log/", None),
        ("post", f"{INSTANCES}{pk}/resume/", {"value": True}),
        ("post", f"{INSTANCES}{pk}/cancel/", None),
        ("post", f"{INSTANCES}{pk}/retry/", None),
        ("post", f"{INSTANCES}{pk}/wake/", None),
    ]


def test_every_endpoint_needs_credentials(anon):
    sync_definitions()
    pk = started()
    for method, url, body in endpoints(pk):
        response = getattr(anon, method)(url, body, format="json")
        assert response.status_code == 401, (method, url)
    assert FlowInstance.objects.get(pk=pk).status == "suspended"
    assert FlowInstance.objects.count() == 1


def test_every_endpoint_needs_its_model_permission(operator):
    sync_definitions()
    pk = started()
    for method, url, body in endpoints(pk):
        response = getattr(operator, method)(url, body, format="json")
        assert response.status_code == 403, (method, url)
        assert response.json()["error"] == "permission_denied"
    viewer = allowed(operator.user, VIEW)
    assert viewer.get(f"{INSTANCES}{pk}/").status_code == 200
    assert viewer.get(FLOWS).status_code == 403  # definitions have their own permission
    for method, url, body in endpoints(pk)[3:]:
        if method == "post":  # starting needs add, operating needs change
            assert getattr(viewer, method)(url, body, format="json").status_code == 403, url
    starter = allowed(operator.user, ADD)
    assert starter.post(f"{INSTANCES}{pk}/resume/", {"value": 1}, format="json").status_code == 403
    assert FlowInstance.objects.get(pk=pk).status == "suspended"
    assert FlowInstance.objects.count() == 1


def test_flow_definitions_with_counts_by_status(operator):
    sync_definitions()
    for _ in range(2):
        started()
    store.cancel(started())
    started("timer", {"seconds": 60})
    client = allowed(operator.user, "flows.view_flowdefinition")
    listed = {d["name"]: d for d in each_page(client, FLOWS)}
    assert set(registry.registered_flows()) - {"test.flaky", "test.receive"} <= set(listed)
    approval = listed["approval"]
    assert approval["counts"] == {
        "running": 0,
        "suspended": 2,
        "done": 0,
        "crashed": 0,
        "cancelled": 1,
        "nondeterministic": 0,
    }
    assert approval["code"] == "as registered"
    assert approval["code_hash"] == registry.registration("approval").code_hash
    assert listed["timer"]["counts"]["suspended"] == 1
    assert client.get(f"{FLOWS}approval/").json() == approval
    assert client.get(f"{FLOWS}nope/").status_code == 404
    assert client.get(f"{FLOWS}a%00b/").status_code == 404  # a 404, not a database error
    assert [d["name"] for d in each_page(client, f"{FLOWS}?limit=2")] == sorted(listed)


def test_start_an_instance(operator):
    client = allowed(operator.user, ADD)
    response = client.post(
        INSTANCES, {"flow": "approval", "input": {"actor": "bob"}}, format="json"
    )
    assert response.status_code == 201, response.content
    pk = response.json()["id"]
    assert response.json() == {
        "id": pk,
        "status": "suspended",
        "value": None,
        "tag": "approval",
        "error": None,
        "detail": "waiting on 'approval'",
    }
    assert response["Location"] == f"{INSTANCES}{pk}/"
    assert FlowInstance.objects.get(pk=pk).input == {"actor": "bob"}
    crashed = client.post(INSTANCES, {"flow": "test.flaky"}, format="json")
    assert crashed.status_code == 201
    assert crashed.json()["status"] == "crashed" and crashed.json()["error"] == "flow_crashed"


@pytest.mark.parametrize(
    "body, field",
    [
        ({"flow": "no.such.flow"}, "flow"),
        ({}, "flow"),
        ({"flow": ["approval"]}, "flow"),
        ({"flow": "approval", "input": [1]}, "input"),
        ({"flow": "approval", "input": "x"}, "input"),
        ({"flow": "approval", "input": {"a": "\u0000"}}, "input"),
        ({"flow": "approval", "input": {"n": 2**70}}, "input"),
    ],
)
def test_start_refuses_bad_input(operator, body, field):
    client = allowed(operator.user, ADD)
    response = client.post(INSTANCES, body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["fields"]
    assert not FlowInstance.objects.exists()


def test_list_filters_by_flow_status_and_waiting_kind(operator):
    waiting = started()
    timer = started("timer", {"seconds": 3600})
    receiving = started("test.receive")
    crashed = started("test.flaky")
    done = started()
    store.resume(done, True)
    client = allowed(operator.user, VIEW)

    def ids(**query) -> list[int]:
        response = client.get(INSTANCES, query)
        assert response.status_code == 200, response.content
        return [i["id"] for i in response.json()["results"]]

    assert ids() == [done, crashed, receiving, timer, waiting]  # newest first
    assert ids(status="suspended") == [receiving, timer, waiting]
    assert ids(waiting="operator") == [waiting]
    assert ids(waiting="timer") == [timer]
    assert ids(waiting="activity") == [receiving]
    assert ids(flow="approval") == [done, waiting]
    assert ids(flow="approval", status="done") == [done]
    assert ids(status="crashed") == [crashed]
    assert ids(tag="approval") == [waiting]
    for bad in ({"status": "asleep"}, {"waiting": "sleep"}):
        response = client.get(INSTANCES, bad)
        assert response.status_code == 400 and set(bad) <= set(response.json()["fields"])
    row = client.get(INSTANCES, {"waiting": "timer"}).json()["results"][0]
    assert row["waiting"] == "timer" and row["wake_at"] and row["flow"] == "timer"


def test_detail_with_the_log(operator):
    pk = started()
    store.resume(pk, {"approved": "yes"})
    client = allowed(operator.user, VIEW)
    detail = client.get(f"{INSTANCES}{pk}/").json()
    assert detail["status"] == "done" and detail["value"] == {"approved": {"approved": "yes"}}
    assert detail["input"] == {} and detail["log_length"] == 1 and detail["log_hidden"] == 0
    assert [(e["seq"], e["kind"], e["tag"], e["value"]) for e in detail["log"]] == [
        (0, "wait", "approval", {"approved": "yes"})
    ]
    assert client.get(f"{INSTANCES}999999/").status_code == 404
    assert client.get(f"{INSTANCES}abc/").status_code == 404
    assert client.get(f"{INSTANCES}{2**70}/").status_code == 404
    suspended = client.get(f"{INSTANCES}{started()}/").json()
    assert suspended["waiting_for"].startswith("waiting on 'approval'")
    assert "s left)" in suspended["waiting_for"]


def test_resume_answers_the_wait(operator):
    pk = started()
    client = allowed(operator.user, VIEW, CHANGE)
    seen = client.get(f"{INSTANCES}{pk}/").json()
    response = client.post(
        f"{INSTANCES}{pk}/resume/",
        {"value": True, "tag": seen["tag"], "at": seen["log_length"]},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json() == {
        "id": pk,
        "status": "done",
        "value": {"approved": True},
        "tag": None,
        "error": None,
        "detail": "done",
    }
    again = client.post(f"{INSTANCES}{pk}/resume/", {"value": False}, format="json")
    assert again.status_code == 409
    assert again.json() == {"error": "already_done", "detail": f"instance {pk} is already done"}
    assert FlowInstance.objects.get(pk=pk).result == {"approved": True}


@pytest.mark.parametrize(
    "body, detail",
    [
        ({"value": True, "tag": "payment"}, "not on 'payment'"),
        ({"value": True, "at": 3}, "has moved on since"),
    ],
)
def test_resume_of_a_wait_that_moved_on_is_409(operator, body, detail):
    pk = started()
    client = allowed(operator.user, CHANGE)
    response = client.post(f"{INSTANCES}{pk}/resume/", body, format="json")
    assert response.status_code == 409
    assert response.json()["error"] == "moved_on" and detail in response.json()["detail"]
    assert FlowInstance.objects.get(pk=pk).status == "suspended"


def test_resume_refusals_by_state(operator):
    client = allowed(operator.user, CHANGE)

    def resume(pk: int) -> dict:
        response = client.post(f"{INSTANCES}{pk}/resume/", {"value": 1}, format="json")
        assert response.status_code == 409, response.content
        return response.json()["error"]

    assert resume(started("timer", {"seconds": 60})) == "not_waiting_for_operator"
    assert resume(started("test.receive")) == "not_waiting_for_operator"
    assert resume(started("test.flaky")) == "not_suspended"
    cancelled = started()
    store.cancel(cancelled)
    assert resume(cancelled) == "already_cancelled"
    assert client.post(f"{INSTANCES}999999/resume/", {"value": 1}, format="json").status_code == 404


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "value"),
        ({"value": "\u0000"}, "value"),
        ({"value": 2**70}, "value"),
        ({"value": 1, "at": -1}, "at"),
        ({"value": 1, "at": "x"}, "at"),
        ({"value": 1, "tag": ["approval"]}, "tag"),
    ],
)
def test_resume_refuses_bad_input(operator, body, field):
    pk = started()
    client = allowed(operator.user, CHANGE)
    response = client.post(f"{INSTANCES}{pk}/resume/", body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["fields"]
    assert FlowInstance.objects.get(pk=pk).log_length == 0


def test_a_null_value_is_an_answer(operator):
    pk = started()
    client = allowed(operator.user, CHANGE)
    response = client.post(f"{INSTANCES}{pk}/resume/", {"value": None}, format="json")
    assert response.status_code == 200 and response.json()["value"] == {"approved": None}


def test_cancel(operator):
    pk = started()
    client = allowed(operator.user, CHANGE)
    response = client.post(f"{INSTANCES}{pk}/cancel/")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    again = client.post(f"{INSTANCES}{pk}/cancel/")
    assert again.status_code == 409 and again.json()["error"] == "already_cancelled"
    assert client.post(f"{INSTANCES}999999/cancel/").status_code == 404


def test_retry(operator):
    pk = started("test.flaky")
    client = allowed(operator.user, CHANGE)
    still = client.post(f"{INSTANCES}{pk}/retry/")
    assert still.status_code == 200  # driven again; it crashed again
    assert still.json()["status"] == "crashed" and still.json()["error"] == "flow_crashed"
    broken["yes"] = False
    fixed = client.post(f"{INSTANCES}{pk}/retry/")
    assert fixed.status_code == 200 and fixed.json()["value"] == "fixed"
    again = client.post(f"{INSTANCES}{pk}/retry/")
    assert again.status_code == 409 and again.json()["error"] == "already_done"
    waiting = client.post(f"{INSTANCES}{started()}/retry/")
    assert waiting.status_code == 409 and waiting.json()["error"] == "not_retryable"


def test_wake(operator):
    timer = started("timer", {"seconds": 3600})
    client = allowed(operator.user, CHANGE)
    woke = client.post(f"{INSTANCES}{timer}/wake/")
    assert woke.status_code == 200 and set(woke.json()["value"]) == {"due", "woke"}
    again = client.post(f"{INSTANCES}{timer}/wake/")
    assert again.status_code == 409 and again.json()["error"] == "already_done"
    registry.register_flow("test.forever", lambda ctx, input: ctx.wait("go"))
    forever = started("test.forever")
    no_timer = client.post(f"{INSTANCES}{forever}/wake/")
    assert no_timer.status_code == 409 and no_timer.json()["error"] == "not_sleeping"
    expired = client.post(f"{INSTANCES}{started()}/wake/").json()  # approval's deadline, now
    assert expired["value"] == {"outcome": "expired", "approved": None}


def test_an_unregistered_flow_is_a_conflict_to_operate(operator):
    registry.register_flow("test.gone", lambda ctx, input: ctx.wait("go"))
    pk = started("test.gone")
    registry.unregister_flow("test.gone")
    client = allowed(operator.user, CHANGE)
    response = client.post(f"{INSTANCES}{pk}/resume/", {"value": 1}, format="json")
    assert response.status_code == 409 and response.json()["error"] == "no_such_flow"


def test_instances_and_a_long_log_page_with_a_cursor(operator):
    registry.register_flow(
        "test.steps", lambda ctx, input: [ctx.step(f"s{i}", lambda i=i: i) for i in range(7)]
    )
    ids = [started() for _ in range(5)]
    steps = started("test.steps")
    client = allowed(operator.user, VIEW)
    listed = [i["id"] for i in each_page(client, f"{INSTANCES}?limit=2")]
    assert listed == [steps, *reversed(ids)]
    log = each_page(client, f"{INSTANCES}{steps}/log/?limit=3")
    assert [e["seq"] for e in log] == list(range(7)) and log[6]["value"] == 6
    assert [e["seq"] for e in client.get(f"{INSTANCES}{steps}/").json()["log"]] == list(range(7))
    assert client.get(f"{INSTANCES}999999/log/").status_code == 404
    bad = client.get(f"{INSTANCES}?cursor=nope")
    assert bad.status_code == 404 and bad.json()["error"] == "invalid_cursor"


def test_every_operation_is_documented_with_its_errors(admin):
    schema = admin.get("/api/v1/schema/?format=json").json()
    mine = {
        p: ops
        for p, ops in schema["paths"].items()
        if p.startswith(("/flow", "/trigger", "/firing"))
    }
    assert len(mine) == 16
    for path, ops in mine.items():
        for method, op in ops.items():
            if method == "parameters":
                continue
            assert op.get("summary"), (method, path)
            assert {"401", "403"} <= set(op["responses"]), (method, path)
            if "{" in path:
                assert "404" in op["responses"]
            if method in ("post", "put", "patch"):
                assert "400" in op["responses"], (method, path)
            if path.endswith(("/resume/", "/cancel/", "/retry/", "/wake/")):
                assert "409" in op["responses"], path
    listing = {p["name"] for p in mine["/flow-instances/"]["get"]["parameters"]}
    assert {"flow", "status", "waiting", "tag", "cursor", "limit"} <= listing
    firings = {p["name"] for p in mine["/firings/"]["get"]["parameters"]}
    assert {"outcome", "trigger", "actor", "cursor"} <= firings
    resume = mine["/flow-instances/{id}/resume/"]["post"]["requestBody"]
    assert resume["content"]["application/json"]["schema"]["$ref"].endswith("/ResumeRequest")


def test_the_command_prints_what_the_api_answers(admin):
    from io import StringIO

    from django.core.management import call_command

    def command(*args):
        out = StringIO()
        call_command("flows", *args, "--json", stdout=out)
        return json.loads(out.getvalue())

    done = started()
    store.resume(done, "yes")
    started("timer", {"seconds": 60})
    assert command("instances") == admin.get(INSTANCES).json()["results"]
    assert command("status", str(done), "--log") == admin.get(f"{INSTANCES}{done}/").json()
    via_api = admin.post(INSTANCES, {"flow": "approval"}).json()
    assert command("cancel", str(via_api["id"])) == {
        **via_api,
        "status": "cancelled",
        "tag": None,
        "detail": "cancelled",
    }
