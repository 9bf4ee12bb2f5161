"""Request bodies parsed so that whatever is accepted can be kept, read back, listed and
sent exactly as it was given.

JSON text can say things no store or reader here can hold: a lone UTF-16 surrogate
(``"\\ud83d"``), a number beyond a double (``1e400``), or the non-standard ``NaN`` and
``Infinity``. The standard library takes all of them (and later writers turn them into
``null`` or fail), so every API body is parsed here instead, and each of them is a 422
naming the field. Nesting is bounded too (POSTBACK_MAX_PAYLOAD_DEPTH): orjson, which writes
every answer, stops at 254 levels, and a value too deep to write could never be read back.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from fastapi import Request, Response
from fastapi.routing import APIRoute

from postback.api.errors import JSONValueError

# Deepest nesting the setting may allow: orjson writes 254 levels, and the deepest answer
# (a listing: envelope, ``data`` array, item) adds 3 to a payload's own.
HARD_MAX_DEPTH = 200
# Integers of 19 digits and more may not fit 64 bits, where orjson would read them as
# floats and lose digits: the standard library reads those bodies.
_LONG_NUMBER = re.compile(rb"\d{19}")
_SURROGATE = re.compile("[\ud800-\udfff]")
Path = list[str | int]


class _Refused:
    """Stands in for a value that cannot be kept, until its place in the body is known."""

    def __init__(self, why: str) -> None:
        self.why = why


def _constant(name: str) -> _Refused:
    return _Refused(f"{name} is not a JSON number")


def _float(text: str) -> float | _Refused:
    value = float(text)
    if math.isinf(value):
        return _Refused(f"the number {text[:40]} is too large to be kept exactly")
    return value


def _int(text: str) -> int | _Refused:
    try:
        return int(text)
    except ValueError:  # past Python's 4,300-digit limit for reading and writing integers
        return _Refused("an integer of more than 4,300 digits cannot be kept")


def loads(raw: bytes, max_depth: int) -> Any:
    """``raw`` as a Python value, or JSONValueError naming the first field that cannot be
    kept (json.JSONDecodeError for text that is not JSON at all)."""
    value: Any = None
    checked = False
    depth = min(max_depth, HARD_MAX_DEPTH)
    if _LONG_NUMBER.search(raw) is None:
        try:
            value = orjson.loads(raw)
            checked = True  # orjson refuses surrogates, NaN, Infinity and overflow itself
        except orjson.JSONDecodeError as exc:
            if "depth" in str(exc):  # past orjson's own 1,024 levels
                raise JSONValueError(_deep_field(raw, depth), _too_deep(depth)) from None
    if not checked:
        # Either not JSON (this raises the error FastAPI reports), or one of the values
        # orjson refuses: read it again to find which, and where.
        try:
            value = json.loads(
                raw, parse_constant=_constant, parse_float=_float, parse_int=_int, strict=True
            )
        except RecursionError:
            raise JSONValueError(_deep_field(raw, depth), _too_deep(depth)) from None
    # A body with no more brackets than the limit cannot be nested past it.
    if checked and raw.count(b"[") + raw.count(b"{") <= depth:
        return value
    _walk(value, depth, strings=not checked)
    return value


def _walk(body: Any, max_depth: int, *, strings: bool) -> None:
    """Find what cannot be kept: too deep (named at the body's top-level field), or a
    refused value or a lone surrogate (named at its own place)."""
    top = body.items() if isinstance(body, dict) else [(None, body)]
    for name, field in top:
        base: Path = ["body"] if name is None else ["body", name]
        if strings and name is not None:
            _check_text(name, base)
        # (value, where, depth of the containers around it, counted from the field)
        stack: list[tuple[Any, Path, int]] = [(field, base, 0)]
        while stack:
            value, where, level = stack.pop()
            if isinstance(value, dict):
                if level >= max_depth:
                    raise JSONValueError(base, _too_deep(max_depth))
                for key, item in value.items():
                    if strings:
                        _check_text(key, [*where, key])
                    stack.append((item, [*where, key], level + 1))
            elif isinstance(value, list):
                if level >= max_depth:
                    raise JSONValueError(base, _too_deep(max_depth))
                stack.extend((item, [*where, i], level + 1) for i, item in enumerate(value))
            elif isinstance(value, _Refused):
                raise JSONValueError(where, value.why)
            elif strings and isinstance(value, str):
                _check_text(value, where)


def _too_deep(max_depth: int) -> str:
    return f"nested deeper than {max_depth} levels (POSTBACK_MAX_PAYLOAD_DEPTH)"


# A string (group 1; group 2 when it is followed by a colon: a key), or a bracket.
_TOKEN = re.compile(rb'("(?:[^"\\]|\\.)*")(\s*:)?|[\[\]{}]')


def _deep_field(raw: bytes, max_depth: int) -> Path:
    """The top-level field of a body too deep to parse at all: the one open when the
    nesting passes the limit (only this rare refusal pays for the scan)."""
    level, field = 0, None
    for token in _TOKEN.finditer(raw):
        first = raw[token.start()]
        if first in b"[{":
            level += 1
            if level > max_depth + 1:
                break
        elif first in b"]}":
            level -= 1
        elif level == 1 and token.group(2):
            field = token.group(1)[1:-1].decode("utf-8", "replace")
    return ["body"] if field is None else ["body", field]


def _check_text(text: str, where: Path) -> None:
    if not text.isascii() and _SURROGATE.search(text):
        raise JSONValueError(
            where, "a lone UTF-16 surrogate (\\ud800-\\udfff without its pair) is not text"
        )


# Svix's type for a body it cannot decode (its ValidatedJson extractor).
NOT_JSON = "value_error.jsondecode"


class StrictJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            settings = self.app.state.settings
            try:
                self._json = loads(await self.body(), settings.max_payload_depth)
            except json.JSONDecodeError as exc:
                # FastAPI would name the character offset as if it were a field.
                where = f"line {exc.lineno} column {exc.colno}"
                raise JSONValueError(["body"], f"not JSON: {exc.msg} ({where})", NOT_JSON) from None
            except UnicodeDecodeError:
                # FastAPI answers anything but a JSONDecodeError with a bare 400.
                why = "not JSON: the body is not UTF-8"
                raise JSONValueError(["body"], why, NOT_JSON) from None
        return self._json


class StrictJSONRoute(APIRoute):
    """An API route whose JSON body is read by ``loads``."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict(request: Request) -> Response:
            return await handler(StrictJSONRequest(request.scope, request.receive))

        return strict
