"""Errors in Svix's shape: ``{"code", "detail"}``, and 422 with field paths.

Every ``loc`` item is a string, as Svix's ``ValidationErrorItem.loc`` is (``list[str]``): a
list index is written as its decimal digits (``["body", "eventTypes", "0"]``)."""

from __future__ import annotations

import logging
from typing import Any

import asyncpg
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy.exc import DataError, SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from postback.schemas import Violation
from postback.store.errors import Conflict, NotFound, is_outage

log = logging.getLogger("postback.api")

CODES = {
    400: "bad_request",
    401: "authentication_failed",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    422: "validation",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}


def error(status: int, detail: str, code: str | None = None) -> JSONResponse:
    return JSONResponse(
        {"code": code or CODES.get(status, "error"), "detail": detail}, status_code=status
    )


class FieldError(Exception):
    """A field that passed its model's checks but breaks a rule of this server (a setting,
    or a combination of stored and new values): answered as a 422 naming the field."""

    def __init__(self, loc: list[str | int], msg: str) -> None:
        super().__init__(msg)
        self.loc = loc
        self.msg = msg


class JSONValueError(HTTPException):
    """A request body that is JSON but holds a value that cannot be kept exactly (or is
    nested too deep). An HTTPException, because FastAPI passes only those through from
    reading a body (anything else becomes a 400)."""

    def __init__(self, loc: list[str | int], msg: str, kind: str = "value_error") -> None:
        super().__init__(422, msg)
        # A key may itself hold the lone surrogate: shown escaped, as the answer is UTF-8.
        self.loc = [
            p.encode("utf-8", "backslashreplace").decode() if isinstance(p, str) else p for p in loc
        ]
        self.msg = msg
        self.kind = kind


def wire_loc(loc: Any) -> list[str]:
    """A field path as Svix writes it: strings only."""
    return [part if isinstance(part, str) else str(part) for part in loc]


def validation_error(loc: list[str | int], msg: str, kind: str = "value_error") -> JSONResponse:
    return JSONResponse(
        {"detail": [{"loc": wire_loc(loc), "msg": msg, "type": kind}]}, status_code=422
    )


def payload_violations(found: list[Violation]) -> JSONResponse:
    """A payload its event type's schema refuses: where, which rule, and why."""
    detail = [
        {
            "loc": wire_loc(["body", "payload", *v.path]),
            "msg": f"{v.message} (schema rule: {v.rule or '/'})",
            "type": "schema_violation",
        }
        for v in found
    ]
    return JSONResponse({"detail": detail}, status_code=422)


def _unprocessable(errors: Any, prefix: tuple[str, ...]) -> JSONResponse:
    # The input itself is left out: it may be large, or a secret.
    detail = [
        {
            "loc": wire_loc([*prefix, *e.get("loc", ())]),
            "msg": e.get("msg", ""),
            "type": e.get("type", ""),
        }
        for e in errors
    ]
    return JSONResponse({"detail": detail}, status_code=422)


def _refused_value(exc: BaseException | None) -> bool:
    """The database refused a value (class 22: bad encoding, out of range, …)."""
    for _ in range(10):
        if exc is None:
            return False
        if isinstance(exc, (DataError, asyncpg.exceptions.DataError)):
            return True
        exc = getattr(exc, "orig", None) or exc.__cause__
    return False


async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    if _refused_value(exc):
        # The caller's input got past the edge but not into the database: a 422, not a 500.
        return validation_error(
            ["body"], "a value cannot be stored: " + str(exc).split("\n")[0][:200]
        )
    if is_outage(exc):
        # One line, no SQL: the statement's parameters may hold a customer's payload.
        brief = str(exc).split("\n", 1)[0][:200]
        log.warning(
            "database unavailable during %s %s: %s", request.method, request.url.path, brief
        )
        return error(503, "the database is unavailable; retry shortly")
    log.exception("unhandled error in %s %s", request.method, request.url.path)
    return error(500, "internal server error")


def install(app: FastAPI) -> None:
    # Starlette's, which FastAPI's subclasses: a path no route has (one of Svix's families
    # postback does not serve, README "Svix SDK calls") is a 404 in the same shape.
    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        answer = error(exc.status_code, detail)
        answer.headers.update(exc.headers or {})  # a 405's Allow
        return answer

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return _unprocessable(exc.errors(), ())

    @app.exception_handler(ValidationError)
    async def _invalid_model(_: Request, exc: ValidationError) -> JSONResponse:
        # A body checked again in a handler (an upsert that turns into a create).
        return _unprocessable(exc.errors(), ("body",))

    @app.exception_handler(FieldError)
    async def _field(_: Request, exc: FieldError) -> JSONResponse:
        return validation_error(exc.loc, exc.msg)

    @app.exception_handler(JSONValueError)
    async def _json_value(_: Request, exc: JSONValueError) -> JSONResponse:
        return validation_error(exc.loc, exc.msg, exc.kind)

    @app.exception_handler(NotFound)
    async def _missing(_: Request, exc: NotFound) -> JSONResponse:
        return error(404, str(exc))

    @app.exception_handler(Conflict)
    async def _conflict(_: Request, exc: Conflict) -> JSONResponse:
        return error(409, str(exc))

    # Database and network errors get their own handlers: those run inside the app and end
    # the request cleanly. The catch-all below runs in Starlette's outermost middleware,
    # which re-raises after answering, and uvicorn then drops the connection.
    for kind in (
        SQLAlchemyError,
        OSError,
        TimeoutError,
        asyncpg.PostgresError,
        asyncpg.InterfaceError,
    ):
        app.add_exception_handler(kind, unexpected_error)  # type: ignore[arg-type]

    app.add_exception_handler(Exception, unexpected_error)
