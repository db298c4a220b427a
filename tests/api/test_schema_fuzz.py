"""The whole API schema run against the app in process (schemathesis over WSGI): no 5xx,
and every response conforms to the schema (status codes, content types, bodies).

Every app's resources join automatically: the schema is the API's own. Bounded so the
run stays well under two minutes on a small machine.
"""

from __future__ import annotations

import pytest
import schemathesis
from django.contrib.auth import get_user_model
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from fedsx.api.authentication import issue_token
from fedsx.models import Host
from tests.outbox.conftest import deliveries_in_every_status

MAX_EXAMPLES = 25
# Not asked of it: that every schema-valid body is accepted. Some refusals depend on the
# state (a domain blocked already) or on meaning the schema cannot state (an activity
# without a type): those are 400s that name the field, as the API tests check.


@pytest.fixture
def auth(db) -> dict[str, str]:
    root = get_user_model().objects.create_superuser("fuzz", password="pw-fuzz")
    return {"Authorization": f"Token {issue_token(root)}"}


@pytest.fixture
def wsgi_app():
    """The project's WSGI app, kept off the signals that close database connections after a
    request (as Django's test client does): the test's transaction must outlive each call."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield get_wsgi_application()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def api_schema(auth, demo, wsgi_app):
    # Something to find, so not every operation ends in a 404.
    deliveries_in_every_status(demo, {"type": "Create"})
    Host.objects.create(host="remote.example", state=Host.State.OPEN)
    return schemathesis.openapi.from_wsgi("/api/v1/schema/?format=json", wsgi_app, headers=auth)


def test_api_conforms_to_its_schema(api_schema, auth):
    # One test over every operation (schemathesis' pytest plugin trips on pytest 9's nodes),
    # reporting each operation that failed with its smallest failing example.
    failures = []
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 20
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def run(case):
            # Each example on the same data: what one wrote (or broke) is rolled back.
            savepoint = transaction.savepoint()
            try:
                case.call_and_validate(headers=auth, excluded_checks=[positive_data_acceptance])
            finally:
                transaction.savepoint_rollback(savepoint)

        try:
            run()
        except (Exception, BaseExceptionGroup) as exc:  # each failing operation reported below
            failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)
