"""``?actor=`` on activities (the API's filter, the admin's search by actor) reads an index
that leads with the actor, newest first: the unique (ap_id, actor) constraint cannot."""

from __future__ import annotations

import pytest
from django.db import connection

from fedsx.api.filters import ActivityFilter
from fedsx.models import Activity

pytestmark = pytest.mark.django_db


def test_activities_have_an_index_on_actor_then_id():
    with connection.cursor() as cursor:
        found = connection.introspection.get_constraints(cursor, Activity._meta.db_table)
    assert found["activity_actor_id"]["columns"] == ["actor", "id"]
    assert found["activity_actor_id"]["index"]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="Postgres's plan")
def test_the_api_filter_by_actor_is_planned_on_that_index():
    Activity.objects.bulk_create(
        Activity(
            ap_id=f"https://r{n % 50}.example/a/{n}",
            activity_cid=f"bcid-{n}",
            type="Like",
            actor=f"https://r{n % 50}.example/u",
            payload={},
        )
        for n in range(2000)
    )
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {Activity._meta.db_table}")
    filtered = ActivityFilter({"actor": "https://r7.example/u"}, Activity.objects.all()).qs
    plan = filtered.order_by("-id")[:50].explain()
    assert "activity_actor_id" in plan, plan
