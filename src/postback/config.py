"""Settings from the environment (``POSTBACK_*``), with defaults that run locally."""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

# Svix's schedule: the first try is immediate, then these waits after each failure.
DEFAULT_RETRY_SCHEDULE: tuple[float, ...] = (5, 300, 1800, 7200, 18000, 36000, 36000)


class SettingsError(ValueError):
    """A POSTBACK_* variable holds a value that cannot be used."""


def parse_duration(text: str) -> float:
    """Seconds from ``"15"``, ``"250ms"``, ``"5s"``, ``"5m"``, ``"2h"`` or ``"5d"``."""
    text = text.strip().lower()
    for suffix, factor in (("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86400)):
        if text.endswith(suffix) and text[: -len(suffix)].replace(".", "", 1).isdigit():
            return float(text[: -len(suffix)]) * factor
    try:
        value = float(text)
    except ValueError:
        raise SettingsError(f"not a duration: {text!r}") from None
    if value < 0:
        raise SettingsError(f"a duration cannot be negative: {text!r}")
    return value


def parse_schedule(text: str) -> tuple[float, ...]:
    """A comma-separated list of durations: the waits after each failed attempt."""
    parts = [p for p in (s.strip() for s in text.split(",")) if p]
    return tuple(parse_duration(p) for p in parts)


def _parse_bool(text: str) -> bool:
    value = text.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise SettingsError(f"not a boolean: {text!r}")


@dataclass(frozen=True)
class Settings:
    """Every knob of postback. Each field is read from ``POSTBACK_<FIELD NAME IN CAPS>``."""

    database_url: str = field(
        default="sqlite:///./postback.db",
        metadata={"help": "sqlite:///path.db (embedded default) or postgresql://user@host/db"},
    )
    database_pool_size: int = field(
        default=20,
        metadata={
            "help": "PostgreSQL connections each process keeps open; a request beyond them "
            "waits for one (SQLite uses one connection)"
        },
    )
    host: str = field(default="127.0.0.1", metadata={"help": "address serve/api listen on"})
    port: int = field(default=8000, metadata={"help": "port serve/api listen on"})
    admin_token: str | None = field(
        default=None,
        metadata={"help": "operator token to install on first start (else one is generated)"},
    )
    public_url: str | None = field(
        default=None, metadata={"help": "URL the API is reached at, for links (portal)"}
    )
    embed_origins: str = field(
        default="",
        metadata={
            "help": "comma-separated origins (scheme://host[:port]) of the sites that embed "
            "the app portal: they may frame it, and call the API from the browser with "
            "app-portal tokens (CORS); empty: the portal cannot be framed and the API sends "
            "no CORS headers"
        },
    )
    retry_schedule: tuple[float, ...] = field(
        default=DEFAULT_RETRY_SCHEDULE,
        metadata={"help": "waits after each failed attempt, e.g. '5s,5m,30m,2h,5h,10h,10h'"},
    )
    retention_period: float = field(
        default=90 * 86400.0,
        metadata={
            "help": "how long messages, their deliveries and attempts are kept, e.g. '90d' "
            "(an application's retentionPeriod overrides it); deliveries still pending or "
            "retrying are kept with their message however old"
        },
    )
    partition_width: float = field(
        default=86400.0,
        metadata={
            "help": "PostgreSQL: the time each partition of messages, deliveries and "
            "attempts covers (by the message's creation), e.g. '1d', 1h to 31d; workers "
            "and API processes keep the next 3 made ahead and retention drops whole ones"
        },
    )
    request_timeout: float = field(
        default=15.0, metadata={"help": "seconds a delivery may take before it counts as failed"}
    )
    response_max_bytes: int = field(
        default=4096, metadata={"help": "bytes of the receiver's response body that are kept"}
    )
    max_payload_bytes: int = field(
        default=1024 * 1024,
        metadata={
            "help": "largest message payload (422 above it); a request body may be 64 KiB "
            "larger, for the JSON around the payload (413 above that)"
        },
    )
    max_header_bytes: int = field(
        default=64 * 1024,
        metadata={
            "help": "serve/api: largest request line plus headers a client may send "
            "(431 and the connection closed above it)"
        },
    )
    max_header_count: int = field(
        default=100,
        metadata={"help": "serve/api: most header fields in one request (431 above it)"},
    )
    header_timeout: float = field(
        default=10.0,
        metadata={
            "help": "serve/api: seconds a client has, from connecting or from a request's "
            "first byte, to send the request line and headers (then 408 and closed)"
        },
    )
    keep_alive_timeout: float = field(
        default=5.0,
        metadata={"help": "serve/api: seconds an idle keep-alive connection stays open"},
    )
    max_payload_depth: int = field(
        default=64,
        metadata={
            "help": "deepest nesting of arrays and objects accepted in a field of a JSON "
            "request body (a message payload, a schema); at most 200"
        },
    )
    max_endpoints_per_app: int = field(
        default=1000,
        metadata={
            "help": "endpoints one application may have (API and portal); a create beyond "
            "it is a 409 (0: no limit)"
        },
    )
    worker_concurrency: int = field(
        default=1000,
        metadata={
            "help": "deliveries one worker process keeps in flight (slow receivers cost "
            "memory, about 0.1 MiB each, not throughput)"
        },
    )
    worker_batch_size: int = field(
        default=100, metadata={"help": "deliveries claimed per database round trip"}
    )
    lease_seconds: float = field(
        default=60.0,
        metadata={
            "help": "how long a claimed delivery stays with its worker before others retake it"
        },
    )
    poll_interval: float = field(
        default=1.0, metadata={"help": "seconds between queue polls when no wakeup arrives"}
    )
    user_agent: str = field(default="postback/0.1", metadata={"help": "User-Agent of deliveries"})
    allow_private_networks: bool = field(
        default=False,
        metadata={"help": "let deliveries reach loopback/private/link-local addresses (dev only)"},
    )
    require_https: bool = field(default=False, metadata={"help": "refuse http:// endpoint URLs"})
    allowed_networks: str = field(
        default="",
        metadata={
            "help": "comma-separated CIDR blocks (IPv4 or IPv6) deliveries and token requests "
            "may reach even though they are private, e.g. a partner's VPN '10.20.0.0/16'"
        },
    )
    denied_networks: str = field(
        default="",
        metadata={
            "help": "comma-separated CIDR blocks never reached, whatever else allows them "
            "(checked at create/update and at send, before any proxy is asked)"
        },
    )
    egress_proxy: str | None = field(
        default=None,
        metadata={
            "help": "send every delivery and token request through this proxy: "
            "http://[user:pass@]host:port (CONNECT for https) or socks5://[user:pass@]host:port "
            "(socks5h: the proxy resolves names); for static egress IPs (docs/deploy.md)"
        },
    )
    egress_no_proxy: str = field(
        default="",
        metadata={
            "help": "comma-separated hosts that bypass POSTBACK_EGRESS_PROXY: a name, "
            "'.example.com' for a domain and its subdomains, a CIDR block, or '*'"
        },
    )
    secret_key: str | None = field(
        default=None,
        metadata={
            "help": "base64 of 32 bytes: encrypts endpoint secrets at rest (SQLite default: "
            "generated into a .key file beside the database)"
        },
    )
    rotation_grace: float = field(
        default=86400,
        metadata={"help": "seconds a rotated-out secret keeps signing beside the new one"},
    )
    disable_after: float = field(
        default=5 * 86400,
        metadata={"help": "an endpoint failing without a success for this long is disabled"},
    )
    endpoint_max_in_flight: int = field(
        default=200,
        metadata={
            "help": "deliveries to one endpoint in flight at once, over every worker process "
            "(an endpoint's maxInFlight overrides it)"
        },
    )
    ordering_blocked_alert: float = field(
        default=3600.0,
        metadata={
            "help": "an ordered endpoint's key blocked this long (its head tried and not "
            "delivered) sends the endpoint.ordering.blocked operational webhook, once per "
            "head; 0: never"
        },
    )
    circuit_failure_threshold: int = field(
        default=5,
        metadata={
            "help": "failed attempts in a row (no answer, 408 or 5xx) that open an endpoint's "
            "circuit: its deliveries wait, and one probe goes out after the cool-down"
        },
    )
    circuit_cooldown: float = field(
        default=30.0,
        metadata={"help": "first wait before an open circuit's probe; doubles per reopening"},
    )
    circuit_max_cooldown: float = field(
        default=600.0, metadata={"help": "longest wait before an open circuit's probe"}
    )
    retry_after_max: float = field(
        default=3600.0,
        metadata={"help": "longest pause a receiver's Retry-After (on 429 or 503) may ask for"},
    )
    retry_jitter: float = field(
        default=0.1,
        metadata={"help": "retries come up to this share of their wait later, at random"},
    )
    worker_heartbeat: float = field(
        default=1.0, metadata={"help": "seconds between a worker's liveness beats"}
    )
    worker_dead_after: float = field(
        default=3.0,
        metadata={"help": "a worker silent this long is dead: its claims are handed to the others"},
    )
    app_token_ttl: float = field(
        default=7 * 86400, metadata={"help": "seconds an app-portal token lives by default"}
    )
    log_format: str = field(
        default="text", metadata={"help": "text (for people) or json (one object per line)"}
    )
    log_level: str = field(
        default="info",
        metadata={"help": "info logs one line per delivery attempt; warning only problems"},
    )
    metrics_access: str = field(
        default="open",
        metadata={"help": "GET /metrics: open, token (operator token required) or off"},
    )
    worker_metrics_port: int = field(
        default=0,
        metadata={
            "help": "`postback worker` serves its own /metrics (unauthenticated) on this port "
            "at POSTBACK_HOST (0: not at all); serve and api serve them on the API port"
        },
    )
    send_traceparent: bool = field(
        default=False,
        metadata={
            "help": "send each delivery with a W3C traceparent header: the attempt's HTTP "
            "client span when tracing is on (OTEL_* variables), else the context the message "
            "came with"
        },
    )
    validate_payloads: bool = field(
        default=False,
        metadata={
            "help": "check every message payload against its event type's newest JSON Schema "
            "(an event type's validatePayloads overrides this)"
        },
    )
    strict_catalog: bool = field(
        default=False,
        metadata={
            "help": "refuse (422, naming the closest known one) event types that are not in "
            "the catalog, in messages and in endpoints' filterTypes; and answer 409 to a "
            "reused eventId sent with another event type or payload, even when the existing "
            "message is asked for (off: Svix's behaviour)"
        },
    )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read ``POSTBACK_*`` from ``env`` (default: the process environment); keyword
        arguments that are not None win, which is how CLI flags beat variables."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = env.get(f"POSTBACK_{f.name.upper()}")
            if raw is None:
                continue
            try:
                values[f.name] = _convert(f, raw)
            except (SettingsError, ValueError) as exc:
                raise SettingsError(f"POSTBACK_{f.name.upper()}: {exc}") from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def __post_init__(self) -> None:
        # Bounds a typo or a unit mistake would break: one clear error at start-up
        # instead of a worker that never sends or a breaker that never closes.
        checks = {
            "endpoint_max_in_flight": 1 <= self.endpoint_max_in_flight <= 100_000,
            "circuit_failure_threshold": 1 <= self.circuit_failure_threshold <= 1_000_000,
            "circuit_cooldown": 0 < self.circuit_cooldown <= 86400,
            "circuit_max_cooldown": self.circuit_cooldown <= self.circuit_max_cooldown <= 7 * 86400,
            "retry_jitter": 0 <= self.retry_jitter <= 1,
            "worker_heartbeat": 0 < self.worker_heartbeat < self.worker_dead_after,
            "retention_period": 3600 <= self.retention_period <= 3650 * 86400,
            "partition_width": 3600 <= self.partition_width <= 31 * 86400,
            "ordering_blocked_alert": 0 <= self.ordering_blocked_alert <= 365 * 86400,
        }
        for name, ok in checks.items():
            if not ok:
                value = getattr(self, name)
                raise SettingsError(f"POSTBACK_{name.upper()}: out of range ({value})")
        for name in ("allowed_networks", "denied_networks"):
            _check_networks(name, getattr(self, name))
        if self.egress_proxy:
            _check_proxy(self.egress_proxy)
        parse_origins(self.embed_origins)

    @property
    def embed_origin_list(self) -> tuple[str, ...]:
        """The embedding sites' origins, as browsers write them in an Origin header."""
        return parse_origins(self.embed_origins)

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def _check_networks(name: str, text: str) -> None:
    for item in (i.strip() for i in text.split(",")):
        try:
            if item:
                ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise SettingsError(f"POSTBACK_{name.upper()}: not a CIDR network: {item!r}") from None


_HOST = re.compile(r"^([a-z0-9]([a-z0-9-]*[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")
_DEFAULT_PORTS = {"http": 80, "https": 443}


@functools.lru_cache(maxsize=8)
def parse_origins(text: str) -> tuple[str, ...]:
    """``POSTBACK_EMBED_ORIGINS`` as origins in a browser's spelling (lower case, no default
    port), or a SettingsError naming the entry that is not ``scheme://host[:port]``."""
    origins: list[str] = []
    for item in (i.strip() for i in text.split(",")):
        origin = _origin(item) if item else ""
        if origin is None:
            raise SettingsError(
                "POSTBACK_EMBED_ORIGINS: expected comma-separated origins like "
                "https://app.example.com or http://localhost:3000 (scheme http or https, a "
                f"host, an optional port, no path), not {item!r}"
            )
        if origin and origin not in origins:
            origins.append(origin)
    return tuple(origins)


def _origin(item: str) -> str | None:
    try:
        parts = urlsplit(item)
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if ":" in host:  # an IPv6 literal (urlsplit has checked it)
        host = f"[{host}]"
    elif not _HOST.match(host):
        return None
    if (
        scheme not in _DEFAULT_PORTS
        or parts.username is not None
        or parts.path
        or "?" in item
        or "#" in item
    ):
        return None
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        host += f":{port}"
    return f"{scheme}://{host}"


PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")


def _check_proxy(url: str) -> None:
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme not in PROXY_SCHEMES or not parts.hostname or port is None:
        raise SettingsError(
            "POSTBACK_EGRESS_PROXY: expected scheme://[user:pass@]host:port with scheme "
            f"{', '.join(PROXY_SCHEMES)}"
        )


def _convert(f: dataclasses.Field[Any], raw: str) -> Any:
    if f.name == "retry_schedule":
        return parse_schedule(raw)
    if f.name in {
        "request_timeout",
        "retention_period",
        "partition_width",
        "lease_seconds",
        "poll_interval",
        "app_token_ttl",
        "rotation_grace",
        "disable_after",
        "ordering_blocked_alert",
        "circuit_cooldown",
        "circuit_max_cooldown",
        "retry_after_max",
        "worker_heartbeat",
        "worker_dead_after",
        "header_timeout",
        "keep_alive_timeout",
    }:
        return parse_duration(raw)
    kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", "")
    if kind == "int":
        return int(raw)
    if kind == "bool":
        return _parse_bool(raw)
    if kind == "float":
        return float(raw)
    return raw or None if "None" in kind else raw
