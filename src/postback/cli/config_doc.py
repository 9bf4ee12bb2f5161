"""docs/configuration.md, written from the Settings class so the reference cannot drift:
``postback config-doc`` rewrites it and a test fails when it is stale."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from postback.config import Settings

HEADER = """\
# Configuration reference

Every setting is an environment variable `POSTBACK_<NAME>`. Command-line flags
(`--database-url`, `--host`, `--port`) win over the variables. Durations take `250ms`, `15s`,
`5m`, `2h`, `5d` or plain seconds; booleans take `true`/`false` (also `1/0`, `yes/no`,
`on/off`).

Tracing is set by OpenTelemetry's own variables, not these: `OTEL_EXPORTER_OTLP_ENDPOINT`
(or `..._TRACES_ENDPOINT`) turns it on, with `OTEL_SERVICE_NAME`, `OTEL_TRACES_SAMPLER` /
`_ARG`, `OTEL_BSP_*` and the OTLP exporter's headers, timeout, compression and certificates;
it needs the `otel` extra (`pip install 'postback[otel]'`). See "Tracing" in architecture.md.

Retention: messages, their deliveries and attempts older than `POSTBACK_RETENTION_PERIOD`
(or their application's `retentionPeriod`, in days) are removed by the workers in short
batches, one process at a time; a message with a delivery still pending, retrying, parked
or being sent is kept whole. On SQLite the pass then hands the freed pages back to the file
system (`PRAGMA incremental_vacuum`), which needs the file's `auto_vacuum` to be
`INCREMENTAL`: files created by this version are. A file created before keeps `NONE` (freed
pages are reused, the file does not shrink) until it is converted once, with postback
stopped and free disk space the size of the file: `sqlite3 postback.db "PRAGMA
auto_vacuum=INCREMENTAL; VACUUM;"` (VACUUM rewrites the whole file; no migration can do it
without that exclusive rewrite).

This file is generated from `postback.config.Settings` by `postback config-doc`; edit the
`help` text there, not here.

| variable | default | what it does |
|---|---|---|
"""


def _duration(seconds: float) -> str:
    """In the largest unit that divides it, as the variables accept it: 86400 → ``1d``."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def _default(value: object, kind: str) -> str:
    # Settings holds durations as float seconds (and the schedule as a tuple of them).
    if kind == "float" and isinstance(value, int | float):
        return _duration(float(value))
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(_duration(v) for v in value)
    return str(value)


def render() -> str:
    rows = []
    for f in dataclasses.fields(Settings):
        help_text = str(f.metadata.get("help", "")).replace("|", "\\|")
        rows.append(
            f"| `POSTBACK_{f.name.upper()}` | `{_default(f.default, str(f.type))}` | {help_text} |"
        )
    return HEADER + "\n".join(rows) + "\n"


def write(path: Path) -> bool:
    """Write the reference; True when the file changed."""
    text = render()
    if path.exists() and path.read_text() == text:
        return False
    path.write_text(text)
    return True
