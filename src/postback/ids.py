"""Prefixed, time-sortable ids: ``msg_`` + 26 characters of Crockford base32.

The first 10 characters encode the creation time in milliseconds, the other 16 are random,
so ids of one kind sort by creation time as plain strings. Lowercase digits and letters
only: byte order and every database collation agree on how they sort.
"""

from __future__ import annotations

import os
import threading
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
_lock = threading.Lock()
_last_ms = 0
_last_ms_text = "0" * 10
_last_rand = 0

APPLICATION = "app"
ENDPOINT = "ep"
MESSAGE = "msg"
ATTEMPT = "atmpt"
DELIVERY = "dlv"
TOKEN = "tok"
TASK = "qtask"


# Every pair of characters, indexed by the 10 bits they encode: half the lookups of one
# character at a time (ids are made per delivery and per attempt, on the hot path).
_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]


def _encode(value: int, length: int) -> str:
    """The low ``5 * length`` bits of ``value``, most significant first (``length`` even)."""
    pairs = _PAIRS
    return "".join([pairs[(value >> shift) & 1023] for shift in range(5 * length - 10, -1, -10)])


def new_id(prefix: str, at_ms: int | None = None) -> str:
    """A new id; within one millisecond ids of this process still increase."""
    global _last_ms, _last_ms_text, _last_rand
    if at_ms is not None:  # an id for another time: outside the monotonic sequence
        return f"{prefix}_{_encode(at_ms, 10)}{_encode(_random(), 16)}"
    with _lock:
        ms = int(time.time() * 1000)
        if ms <= _last_ms:
            rand = _last_rand + 1
        else:
            rand = _random()
            _last_ms, _last_ms_text = ms, _encode(ms, 10)
        _last_rand = rand
        stamp = _last_ms_text
    return f"{prefix}_{stamp}{_encode(rand, 16)}"


def _random() -> int:
    return int.from_bytes(os.urandom(10), "big") >> 1  # the top bit free: room to increment


def floor_id(prefix: str, at_ms: int) -> str:
    """The smallest id of ``prefix`` created at ``at_ms``: for time range queries on ids."""
    return f"{prefix}_{_encode(at_ms, 10)}{'0' * 16}"


def has_prefix(value: str, prefix: str) -> bool:
    return value.startswith(prefix + "_") and len(value) == len(prefix) + 27
