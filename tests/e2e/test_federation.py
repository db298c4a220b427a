"""Two fedsx nodes federating over loopback, each a gunicorn process with its own Postgres
database and its own Celery worker: A's demo follows B's demo with the command, B's
operator approves, the Accept reaches A, then B's Note and its Delete arrive at A in order.
Every step goes through what an operator runs (manage.py) and real signed HTTP."""

from __future__ import annotations

import json

import pytest

from .services import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def suspended_approvals(node) -> list[int]:
    return [
        pk
        for (pk,) in node.db.rows(
            "SELECT id FROM flows_flowinstance"
            " WHERE flow_name = 'approval' AND status = 'suspended' ORDER BY id"
        )
    ]


def follow_state(node, follower: str, followed: str) -> str | None:
    return node.db.value(
        "SELECT f.state FROM fedsx_follow f"
        " JOIN fedsx_actor a ON a.id = f.follower_id JOIN fedsx_actor b ON b.id = f.following_id"
        " WHERE a.ap_id = %s AND b.ap_id = %s",
        follower,
        followed,
    )


def post(node, document: dict) -> str:
    result = node.manage("post", "--as", "demo", "-", "--json", input_text=json.dumps(document))
    return json.loads(result.stdout)["id"]


def test_a_follows_b_b_approves_then_a_note_and_its_delete_arrive_in_order(two_nodes):
    a, b = two_nodes
    b.manage("triggers", "add", "--type", "Follow", "--flow", "approval")

    # A follows B: WebFinger and B's actor document over loopback, then the signed Follow.
    follow = json.loads(
        a.manage("follow", "--as", "demo", f"demo@127.0.0.1:{b.port}", "--json").stdout
    )
    assert follow["state"] == "pending"
    (instance,) = wait_until(lambda: suspended_approvals(b), 30, "B's approval instance")
    assert follow_state(b, a.demo, b.demo) == "pending"

    # B's operator approves: the approval flow sends the Accept, A's follow is accepted.
    b.manage("flows", "resume", str(instance), "--value", "true")
    wait_until(lambda: follow_state(a, a.demo, b.demo) == "accepted", 30, "A's follow accepted")
    assert follow_state(b, a.demo, b.demo) == "accepted"
    # A's follow flow, waiting for that Accept, ended accepted (flows status says so).
    ended = wait_until(
        lambda: a.db.value(
            "SELECT result->>'outcome' FROM flows_flowinstance WHERE id = %s AND status = 'done'",
            follow["flow_instance"],
        ),
        30,
        "A's follow flow to end",
    )
    assert ended == "accepted"

    # B posts to its followers: the Note reaches A's inbox once; its Delete comes after it.
    followers = f"{b.demo}/followers"
    create = post(b, {"type": "Note", "content": "hello from B", "cc": [followers]})
    wait_until(lambda: any(row[2] == create for row in a.inbox()), 30, "the Create at A")
    note = b.db.value(
        "SELECT payload->'object'->>'id' FROM fedsx_activity WHERE ap_id = %s", create
    )
    delete = post(b, {"type": "Delete", "object": note, "cc": [followers]})
    wait_until(lambda: any(row[2] == delete for row in a.inbox()), 30, "the Delete at A")
    seqs = {ap_id: seq for seq, _, ap_id in a.inbox()}
    assert [row[2] for row in a.inbox()].count(create) == 1
    assert seqs[create] < seqs[delete]
    delivered = b.db.rows("SELECT status, attempts FROM fedsx_delivery ORDER BY id")
    assert delivered == [("delivered", 1)] * 3  # Accept, Create, Delete: one POST each
