"""Cheaper HTTP clients for the test process.

Every ``httpx.Client`` (each ``httpx.get``/``httpx.post`` call, each svix SDK client) builds
a new TLS context and loads the whole certifi bundle into it: about 150 ms of CPU, far more
on a busy machine, and the suite makes thousands of them, all to talk plain HTTP to
127.0.0.1. In the test process the default context is built once and shared (an
``ssl.SSLContext`` may serve any number of connections); any other ``verify`` or a client
certificate still gets a context of its own. postback's own code does not use httpx at run
time, so nothing under test changes.
"""

from __future__ import annotations

import os
import ssl
import threading
from typing import Any

import httpx._config as _config
import httpx._transports.default as _default

_build = _default.create_ssl_context
_shared: dict[tuple[str | None, str | None], ssl.SSLContext] = {}
_lock = threading.Lock()


def _create_ssl_context(verify: Any = True, cert: Any = None, trust_env: bool = True) -> Any:
    if verify is not True or cert is not None or not trust_env:
        return _build(verify=verify, cert=cert, trust_env=trust_env)
    key = (os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
    with _lock:
        if key not in _shared:
            _shared[key] = _build(verify=True, cert=None, trust_env=True)
        return _shared[key]


REQUEST_TIMEOUT_S = 30.0


def install() -> None:
    _default.create_ssl_context = _create_ssl_context  # type: ignore[assignment]
    # Every client and module-level call takes this one object as its default.
    default = _config.DEFAULT_TIMEOUT_CONFIG
    default.connect = default.read = default.write = default.pool = REQUEST_TIMEOUT_S
