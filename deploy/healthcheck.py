"""The container's health check: GET http://127.0.0.1:PORT/PATH answers 2xx, else exit 1.

    python3 healthcheck.py                 /api/v1/health on POSTBACK_PORT (serve, api)
    python3 healthcheck.py 9100 /metrics   a worker's metrics port

Only the standard library: the image has no curl."""

import os
import sys
import urllib.request

port = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("POSTBACK_PORT", "8000")
path = sys.argv[2] if len(sys.argv) > 2 else "/api/v1/health"
try:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=4) as answer:
        sys.exit(0 if 200 <= answer.status < 300 else 1)
except Exception as exc:
    print(f"unhealthy: {exc}", file=sys.stderr)
    sys.exit(1)
