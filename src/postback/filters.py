"""Per-endpoint payload rules: filters (which messages an endpoint gets) and projections
(which fields of them it sees).

A filter is a small Mongo-like document evaluated against the message payload::

    {"data.product.id": 42, "data.purchase.price.value": {"$gte": 100},
     "$or": [{"data.buyer.country": "MX"}, {"data.buyer.country": {"$in": ["CO", "PE"]}}]}

Keys are dotted paths (a numeric segment indexes an array) or ``$and``/``$or``; a value is
either a literal (equality; a list field matches when it holds the literal) or an object
of operators: ``$eq $ne $in $nin $gt $gte $lt $lte $exists``. Every key must hold.

A projection is ``{"include": [pointers]}`` or ``{"exclude": [pointers]}`` with RFC 6901
JSON pointers (``/data/buyer``). Filters and projections are checked when an endpoint is
saved (:class:`RuleError` names the offending place) and compiled once per distinct rule.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from postback.domain import decode_json, encode_json

MAX_RULE_BYTES = 8192
MAX_DEPTH = 8
MAX_LIST = 1000
MAX_POINTERS = 100
_MISSING = object()

# A compiled filter: None when the payload matches, else why it does not.
Predicate = Callable[[Any], "str | None"]


class RuleError(ValueError):
    """A filter or projection that cannot be used; ``loc`` is where, inside the rule."""

    def __init__(self, loc: list[str | int], message: str) -> None:
        super().__init__(message)
        self.loc = loc

    @property
    def located(self) -> str:
        """The message prefixed with its place, e.g. ``$or.0.data.amount.$gt: …``."""
        place = ".".join(str(p) for p in self.loc)
        return f"{place}: {self}" if place else str(self)


# ---- filters ---------------------------------------------------------------------------


def check_filter(rule: Any) -> dict[str, Any]:
    """Validate a filter as an endpoint is saved (compiling it is the check)."""
    _check_size(rule)
    _compile_doc(rule, [], 0)
    return rule


@functools.lru_cache(maxsize=4096)
def _compiled_filter(text: bytes) -> Predicate:
    return _compile_doc(decode_json(text), [], 0)


def compile_filter(rule: dict[str, Any]) -> Predicate:
    """The predicate of a stored filter, compiled once per distinct filter."""
    # A stored filter comes back with its keys in one order: its JSON is a fine cache key.
    return _compiled_filter(encode_json(rule))


def _check_size(rule: Any) -> None:
    try:
        size = len(encode_json(rule))
    except TypeError:
        raise RuleError([], "not JSON") from None
    if size > MAX_RULE_BYTES:
        raise RuleError([], f"larger than {MAX_RULE_BYTES} bytes")


def _compile_doc(doc: Any, loc: list[str | int], depth: int) -> Predicate:
    if not isinstance(doc, dict):
        raise RuleError(loc, "a filter is a JSON object")
    if depth > MAX_DEPTH:
        raise RuleError(loc, f"nested deeper than {MAX_DEPTH} levels")
    parts: list[Predicate] = []
    for key, value in doc.items():
        if key in ("$and", "$or"):
            parts.append(_compile_group(key, value, [*loc, key], depth))
        elif key.startswith("$"):
            raise RuleError([*loc, key], "unknown operator here (expected a path, $and or $or)")
        else:
            parts.append(_compile_field(key, value, [*loc, key]))
    if len(parts) == 1:
        return parts[0]
    return _all_of(parts)


def _all_of(parts: list[Predicate]) -> Predicate:
    def match(payload: Any) -> str | None:
        for part in parts:
            why = part(payload)
            if why is not None:
                return why
        return None

    return match


def _compile_group(op: str, value: Any, loc: list[str | int], depth: int) -> Predicate:
    if not isinstance(value, list) or not value:
        raise RuleError(loc, f"{op} takes a non-empty list of filters")
    parts = [_compile_doc(item, [*loc, i], depth + 1) for i, item in enumerate(value)]
    if op == "$and":
        return _all_of(parts)

    def any_of(payload: Any) -> str | None:
        reasons = []
        for part in parts:
            why = part(payload)
            if why is None:
                return None
            reasons.append(why)
        return "none of $or held: " + "; ".join(reasons)

    return any_of


def check_path(path: str) -> str:
    """A dotted path as filters use it (``data.product.id``), checked; RuleError if not."""
    _split_path(path, [])
    return path


def _split_path(path: str, loc: list[str | int]) -> tuple[str | int, ...]:
    if not path or len(path) > 256 or "" in path.split("."):
        raise RuleError(loc, "a path is dotted names like data.buyer.country (at most 256)")
    return tuple(int(p) if _is_index(p) else p for p in path.split("."))


def lookup_path(doc: Any, path: str) -> Any:
    """The value at a dotted path of a parsed payload, or None where there is none."""
    try:
        found = _lookup(doc, _split_path(path, []))
    except RuleError:
        return None
    return None if found is _MISSING else found


def _lookup(value: Any, path: tuple[str | int, ...]) -> Any:
    for step in path:
        if isinstance(value, dict):
            value = value.get(str(step), _MISSING)
        elif isinstance(value, list) and isinstance(step, int) and step < len(value):
            value = value[step]
        else:
            return _MISSING
        if value is _MISSING:
            return value
    return value


def _same(a: Any, b: Any) -> bool:
    # JSON true is not 1: Python's bool-is-int must not leak into matching.
    return (type(a) is type(b) or _numbers(a, b)) and a == b


def _numbers(a: Any, b: Any) -> bool:
    return all(isinstance(x, int | float) and not isinstance(x, bool) for x in (a, b))


def _equals(field: Any, literal: Any) -> bool:
    if _same(field, literal):
        return True
    return isinstance(field, list) and any(_same(item, literal) for item in field)


def _order(field: Any, literal: Any) -> int | None:
    """-1/0/1 comparing two numbers or two strings (ISO dates sort as text); else None."""
    if _numbers(field, literal) or (isinstance(field, str) and isinstance(literal, str)):
        return (field > literal) - (field < literal)
    return None


_COMPARE: dict[str, Callable[[int], bool]] = {
    "$gt": lambda c: c > 0,
    "$gte": lambda c: c >= 0,
    "$lt": lambda c: c < 0,
    "$lte": lambda c: c <= 0,
}


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _compile_field(path: str, cond: Any, loc: list[str | int]) -> Predicate:
    steps = _split_path(path, loc)
    if not isinstance(cond, dict):
        if not _is_scalar(cond):
            raise RuleError(loc, "compare with a string, number, boolean or null")
        tests = [("$eq", cond)]
    else:
        if not cond:
            raise RuleError(loc, "an empty operator object")
        tests = list(cond.items())
    checks = [_compile_operator(op, arg, [*loc, op]) for op, arg in tests]

    def match(payload: Any) -> str | None:
        field = _lookup(payload, steps)
        for check, (op, arg) in zip(checks, tests, strict=True):
            if not check(field):
                return f"{path} {op} {_shown(arg)} did not hold"
        return None

    return match


def _shown(arg: Any) -> str:
    return encode_json(arg).decode()[:120]


def _compile_operator(op: str, arg: Any, loc: list[str | int]) -> Callable[[Any], bool]:
    if op in ("$eq", "$ne"):
        if not _is_scalar(arg):
            raise RuleError(loc, f"{op} takes a string, number, boolean or null")
        if op == "$eq":
            return lambda field: field is not _MISSING and _equals(field, arg)
        return lambda field: field is _MISSING or not _equals(field, arg)
    if op in ("$in", "$nin"):
        if not isinstance(arg, list) or len(arg) > MAX_LIST or not all(map(_is_scalar, arg)):
            raise RuleError(loc, f"{op} takes a list of at most {MAX_LIST} scalars")
        if op == "$in":
            return lambda field: field is not _MISSING and any(_equals(field, a) for a in arg)
        return lambda field: field is _MISSING or not any(_equals(field, a) for a in arg)
    if op in _COMPARE:
        if not (isinstance(arg, str) or _numbers(arg, 0)):
            raise RuleError(loc, f"{op} takes a number or a string")
        holds = _COMPARE[op]

        def compare(field: Any) -> bool:
            order = _order(field, arg)
            return order is not None and holds(order)

        return compare
    if op == "$exists":
        if not isinstance(arg, bool):
            raise RuleError(loc, "$exists takes true or false")
        return lambda field: (field is not _MISSING) is arg
    raise RuleError(loc, f"unknown operator {op!r}")


# ---- projections -----------------------------------------------------------------------


def check_projection(rule: Any) -> dict[str, list[str]]:
    """Validate ``{"include": [...]}`` or ``{"exclude": [...]}`` as an endpoint is saved."""
    if not isinstance(rule, dict) or len(rule) != 1 or next(iter(rule)) not in _MODES:
        raise RuleError([], 'a projection is {"include": [pointers]} or {"exclude": [pointers]}')
    mode, pointers = next(iter(rule.items()))
    if not isinstance(pointers, list) or not 1 <= len(pointers) <= MAX_POINTERS:
        raise RuleError([mode], f"a list of 1 to {MAX_POINTERS} JSON pointers")
    for i, pointer in enumerate(pointers):
        _parse_pointer(pointer, [mode, i])
    return rule


_MODES = ("include", "exclude")


def _parse_pointer(pointer: Any, loc: list[str | int]) -> tuple[str, ...]:
    if not isinstance(pointer, str) or not pointer.startswith("/") or len(pointer) > 512:
        raise RuleError(loc, "a JSON pointer like /data/buyer (RFC 6901, at most 512)")
    tokens = pointer[1:].split("/")
    for token in tokens:
        if "~" in token.replace("~0", "").replace("~1", ""):
            raise RuleError(loc, "~ must be escaped as ~0 (and / as ~1)")
    return tuple(token.replace("~1", "/").replace("~0", "~") for token in tokens)


def project(doc: Any, rule: dict[str, list[str]]) -> bytes:
    """The (parsed) payload as one endpoint sees it, as JSON bytes: only the included
    pointers, or without the excluded ones. Pointers that lead nowhere are ignored. The
    message's own ``doc`` is never changed: it is shared by every endpoint."""
    mode, pointers = next(iter(rule.items()))
    paths = [_parse_pointer(p, [mode]) for p in pointers]
    if mode == "include":
        return encode_json(_include(doc, paths))
    if not isinstance(doc, dict | list):
        return encode_json(doc)
    root = _shallow(doc)
    copied = {id(root)}
    # Deepest and highest index first, so removing one leaves the others' places intact.
    for path in sorted(paths, key=lambda p: (len(p), [_index_key(t) for t in p]), reverse=True):
        _remove(root, path, copied)
    return encode_json(root)


def _shallow(value: Any) -> Any:
    return dict(value) if isinstance(value, dict) else list(value)


def _is_index(token: str) -> bool:
    return token.isascii() and token.isdigit()  # "¹" is a digit to str.isdigit


def _index_key(token: str) -> tuple[int, str]:
    return (int(token), "") if _is_index(token) else (-1, token)


def _step(value: Any, token: str) -> Any:
    if isinstance(value, dict):
        return value.get(token, _MISSING)
    if isinstance(value, list) and _is_index(token) and int(token) < len(value):
        return value[int(token)]
    return _MISSING


def _include(doc: Any, paths: list[tuple[str, ...]]) -> Any:
    out: dict[str, Any] = {}
    for path in paths:
        value, used = doc, 0
        for token in path:
            value, used = _step(value, token), used + 1
            if value is _MISSING or isinstance(value, list):
                break  # an array on the way is included whole
        if value is _MISSING:
            continue
        target: Any = out
        for token in path[: used - 1]:
            target = target.setdefault(token, {})
            if not isinstance(target, dict):
                break  # an earlier pointer already copied this whole subtree
        else:
            target[path[used - 1]] = value  # serialised at once, never changed
    return out


def _remove(root: Any, path: tuple[str, ...], copied: set[int]) -> None:
    """Remove ``path`` from ``root``, copying the containers on the way (and only those)
    the first time they are touched, so nothing shared with the message changes."""
    parent = root
    for token in path[:-1]:
        child = _step(parent, token)
        if not isinstance(child, dict | list):
            return
        if id(child) not in copied:
            child = _shallow(child)
            copied.add(id(child))
            parent[int(token) if isinstance(parent, list) else token] = child
        parent = child
    last = path[-1]
    if isinstance(parent, dict):
        parent.pop(last, None)
    elif isinstance(parent, list) and _is_index(last) and int(last) < len(parent):
        del parent[int(last)]
