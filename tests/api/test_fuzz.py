"""Schemathesis against the live server's /openapi.json: generated requests, valid and not,
never get a 5xx, and every response matches the documented schema."""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance
from svix.api import ApplicationIn, EventTypeIn

from tests.support.server import ServerHandle

# POSTBACK_FUZZ_EXAMPLES raises the bound for a longer hunt than the suite can afford.
EXAMPLES_PER_OPERATION = int(os.environ.get("POSTBACK_FUZZ_EXAMPLES", "12"))
# The schema cannot say everything the edge checks (URL shapes, reserved header names, ids
# that cannot be uids), so a schema-valid body may still get a 422: that is not a failure.
LOOSER_THAN_US = [positive_data_acceptance]


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_no_server_errors_and_documented_responses(server: ServerHandle) -> None:
    svix = server.svix()
    # Something real to address, so generated requests sometimes reach existing rows.
    svix.application.create(ApplicationIn(name="fuzz", uid="fuzz"))
    svix.event_type.create(EventTypeIn(name="purchase.approved", description="Paid"))
    schema = schemathesis.openapi.from_url(server.url + "/openapi.json")
    auth = {"authorization": f"Bearer {server.token}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 30

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=auth, excluded_checks=LOOSER_THAN_US)

        check()
