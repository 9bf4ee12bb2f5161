"""Answers that say more than Svix's, given only to a request that asks for them.

By default every route answers as Svix's own OpenAPI document says (docs/svix-compatibility.md).
Two requests may ask for more:

- ``Prefer: return=representation`` (RFC 7240) on ``POST …/secret/rotate``: 200 with the new
  key (``{"key": "whsec_…"}``) instead of 204 with no body. The official Svix SDKs ask for it
  by being themselves (a ``User-Agent`` of ``svix-libs/…``): their ``rotate_secret`` reads the
  key from this answer (svix 2.9.1 for Python, ``EndpointSecretOut.model_validate``), so a
  bodiless 204 would break them.
- ``Postback-Return-Existing: true`` on ``POST …/msg``: an ``eventId`` already used in the
  application answers 200 with the message first sent under it (nothing new is queued)
  instead of Svix's 409. A producer that retries after a lost answer gets the message id back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the CLI reads the header names without loading FastAPI
    from fastapi import Request

RETURN_REPRESENTATION = "return=representation"
RETURN_EXISTING = "postback-return-existing"
SVIX_SDK_AGENT = "svix-libs/"


def prefers_representation(request: Request) -> bool:
    """The request's ``Prefer`` header holds ``return=representation``, or it comes from an
    official Svix SDK (which reads the answer's body)."""
    if request.headers.get("user-agent", "").startswith(SVIX_SDK_AGENT):
        return True
    for header in request.headers.getlist("prefer"):
        for preference in header.split(","):
            if "".join(preference.split(";", 1)[0].split()).lower() == RETURN_REPRESENTATION:
                return True
    return False


def returns_existing(request: Request) -> bool:
    """The request asks for the first message of a reused ``eventId`` instead of a 409."""
    return request.headers.get(RETURN_EXISTING, "").strip().lower() in ("true", "1", "yes")
