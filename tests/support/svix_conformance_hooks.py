"""schemathesis hooks for the Svix conformance run (loaded by the ``st`` process through
SCHEMATHESIS_HOOKS; tests/api/test_svix_conformance.py sets it and the variables below).

- Every request carries the operator token, except ``POST /api/v1/auth/logout``: Svix's
  document gives that one a single answer, 204, for the app token it logs out, so each call
  gets a portal token of its own (a second call with a token already logged out would be
  a 401 the document does not list, and an operator token may not log out at all).
- A failure is dropped only when it is exactly one of ``svix_spec.EXCUSED``: that check, that
  operation, that status.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import httpx
import schemathesis

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.support.svix_spec import EXCUSED

URL = os.environ["SVIX_CONFORMANCE_URL"]
TOKEN = os.environ["SVIX_CONFORMANCE_TOKEN"]
LOGOUT = "POST /api/v1/auth/logout"
# Created in-line by the first portal-access call if the run deleted it.
PORTAL_APP = {"name": "logout probe", "uid": "conformance-logout-probe"}


_client = httpx.Client(base_url=URL, headers={"authorization": f"Bearer {TOKEN}"}, timeout=30)


def _portal_token() -> str:
    answer = _client.post(
        f"/api/v1/auth/app-portal-access/{PORTAL_APP['uid']}", json={"application": PORTAL_APP}
    )
    answer.raise_for_status()
    return answer.json()["token"]


@schemathesis.hook
def before_call(ctx: Any, case: schemathesis.Case, **kwargs: Any) -> None:
    token = _portal_token() if case.operation.label == LOGOUT else TOKEN
    case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}


@schemathesis.hook
def filter_failure(ctx: Any, failure: Any, case: schemathesis.Case, response: Any) -> bool:
    excused = EXCUSED.get(case.operation.label)
    return not (
        excused is not None
        and excused.check in type(failure).checks
        and response.status_code == excused.status
    )
