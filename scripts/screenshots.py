"""Write PNGs of the web UI's main pages to docs/screenshots/ (`make screenshots`).

Starts `postback serve` on a throwaway SQLite file, a small receiver on 127.0.0.1 (one URL
that answers 200, one that answers 503), fills in a believable catalog and some traffic
through the API, then photographs the pages in headless Chromium."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
from playwright.sync_api import Page, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
TOKEN = "pb_screenshots_operator"

PURCHASE_SCHEMA = {
    "type": "object",
    "required": ["purchase_id", "status", "buyer", "product"],
    "properties": {
        "purchase_id": {"type": "string", "description": "Purchase code", "maxLength": 32},
        "status": {"type": "string", "enum": ["APPROVED", "COMPLETE"], "description": "Status"},
        "approved_at": {"type": "string", "format": "date-time", "description": "Approval time"},
        "buyer": {
            "type": "object",
            "description": "Who bought",
            "properties": {
                "name": {"type": "string", "description": "Buyer name", "maxLength": 120},
                "email": {"type": "string", "format": "email", "maxLength": 120},
            },
        },
        "product": {
            "type": "object",
            "properties": {
                "id": {"type": "integer", "description": "Product id"},
                "name": {"type": "string", "maxLength": 200},
            },
        },
        "price": {
            "type": "object",
            "properties": {
                "value": {"type": "number", "description": "Amount paid"},
                "currency": {"type": "string", "format": "ISO 4217", "maxLength": 3},
            },
        },
    },
    "examples": [
        {
            "purchase_id": "HP16015479281",
            "status": "APPROVED",
            "approved_at": "2026-11-25T14:03:00Z",
            "buyer": {"name": "Ana Souza", "email": "ana@example.com"},
            "product": {"id": 213344, "name": "Curso de Python"},
            "price": {"value": 297.0, "currency": "BRL"},
        }
    ],
}


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        ok = self.path == "/ok"
        body = b'{"received": true}' if ok else b"Service Unavailable"
        self.send_response(200 if ok else 503)
        self.send_header("content-type", "application/json" if ok else "text/plain")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(workdir: Path, port: int) -> subprocess.Popen[bytes]:
    env = os.environ | {
        "POSTBACK_DATABASE_URL": f"sqlite:///{workdir / 'postback.db'}",
        "POSTBACK_ADMIN_TOKEN": TOKEN,
        "POSTBACK_ALLOW_PRIVATE_NETWORKS": "true",
        "POSTBACK_RETRY_SCHEDULE": "1s",
        "POSTBACK_POLL_INTERVAL": "0.2",
    }
    postback = Path(sys.executable).parent / "postback"
    proc = subprocess.Popen(
        [str(postback), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v1/health/").status_code == 204:
                return proc
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("postback serve did not start in 30 s")


def seed(api: httpx.Client, hook: str) -> tuple[str, str, str]:
    """A catalog, one application with a working and a failing endpoint, and traffic.
    Returns (app id, working endpoint id, a message id)."""
    api.post(
        "/api/v1/event-type/",
        json={
            "name": "purchase.approved",
            "description": "A purchase was approved",
            "descriptions": {"es": "Se aprobó una compra", "pt-BR": "Uma compra foi aprovada"},
            "groupName": "purchase",
            "schemas": {"1": PURCHASE_SCHEMA},
            "productPath": "product.id",  # "One product" endpoints need nothing of the sender
        },
    ).raise_for_status()
    for name, text in (
        ("purchase.refunded", "A purchase was refunded"),
        ("subscription.canceled", "A subscription was canceled"),
    ):
        body = {"name": name, "description": text, "productPath": "product.id"}
        api.post("/api/v1/event-type/", json=body)
    # The operator is told when an endpoint stops (the dashboard lists these webhooks).
    ops = {"url": f"{hook}/ok", "filterTypes": ["endpoint.disabled", "endpoint.created"]}
    api.post("/api/v1/operational-webhook/endpoint/", json=ops).raise_for_status()
    app = api.post("/api/v1/app/", json={"name": "Loja da Ana", "uid": "loja-ana"}).json()
    api.post("/api/v1/app/", json={"name": "Escuela Nube", "uid": "escuela-nube"})
    good = api.post(
        f"/api/v1/app/{app['id']}/endpoint/",
        json={
            "url": f"{hook}/ok",
            "description": "Production",
            "filterTypes": ["purchase.approved", "purchase.refunded"],
        },
    ).json()
    api.post(
        f"/api/v1/app/{app['id']}/endpoint/",
        json={"url": f"{hook}/down", "description": "Old CRM", "product": "213344"},
    )
    legacy = api.post(
        f"/api/v1/app/{app['id']}/endpoint/",
        json={"url": f"{hook}/down?legacy=1", "description": "Legacy ERP"},
    ).json()
    api.patch(f"/api/v1/app/{app['id']}/endpoint/{legacy['id']}/", json={"disabled": True})
    example = PURCHASE_SCHEMA["examples"][0]
    last = ""
    for i in range(12):
        body = {
            "eventType": "purchase.approved" if i % 3 else "purchase.refunded",
            "eventId": f"HP160154792{i:02d}",
            "payload": example | {"purchase_id": f"HP160154792{i:02d}"},
        }
        last = api.post(f"/api/v1/app/{app['id']}/msg/", json=body).json()["id"]
    return app["id"], good["id"], last


def wait_for_attempts(api: httpx.Client, app_id: str, msg_id: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        attempts = api.get(f"/api/v1/app/{app_id}/attempt/msg/{msg_id}/").json()["data"]
        if len(attempts) >= 3:  # the working endpoint once, the failing one twice
            return
        time.sleep(0.3)


def shoot(page: Page, name: str) -> None:
    page.screenshot(path=str(OUT / f"{name}.png"), full_page=True)
    print(f"wrote docs/screenshots/{name}.png")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    hook = f"http://127.0.0.1:{receiver.server_address[1]}"
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = start_server(Path(tmp), port)
        try:
            headers = {"authorization": f"Bearer {TOKEN}"}
            with httpx.Client(base_url=base, headers=headers, timeout=10) as api:
                app_id, endpoint_id, msg_id = seed(api, hook)
                wait_for_attempts(api, app_id, msg_id)
            photograph(base, endpoint_id, msg_id)
        finally:
            server.terminate()
            server.wait(30)
            receiver.shutdown()


def photograph(base: str, endpoint_id: str, msg_id: str) -> None:
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        ctx = browser.new_context(locale="en-US", viewport={"width": 1100, "height": 800})
        page = ctx.new_page()
        page.goto(f"{base}/dashboard/login")
        page.get_by_label("Operator token").fill(TOKEN)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(f"{base}/dashboard/")
        shoot(page, "dashboard")
        page.get_by_role("button", name="Open portal: Loja da Ana").click()
        page.wait_for_url(f"{base}/portal/endpoints")
        shoot(page, "portal-endpoints")
        page.goto(f"{base}/portal/endpoints/{endpoint_id}")
        shoot(page, "portal-endpoint")
        page.goto(f"{base}/portal/messages/{msg_id}")
        shoot(page, "portal-message")
        page.goto(f"{base}/portal/catalog#et-purchase.approved")  # that one opened
        shoot(page, "portal-catalog")
        page.goto(f"{base}/portal/messages")
        page.get_by_role("link", name="Español").click()
        shoot(page, "portal-messages-es")
        phone = browser.new_context(
            viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True
        )
        phone.add_cookies(ctx.cookies())
        mobile = phone.new_page()
        mobile.goto(f"{base}/ui/lang/pt-BR?next=/portal/endpoints")
        shoot(mobile, "portal-endpoints-phone-pt-br")
        mobile.goto(f"{base}/portal/messages/{msg_id}")
        shoot(mobile, "portal-message-phone-pt-br")
        mobile.goto(f"{base}/ui/lang/es?next=/portal/catalog")
        shoot(mobile, "portal-catalog-phone-es")
        mobile.goto(f"{base}/ui/lang/en?next=/dashboard/")
        shoot(mobile, "dashboard-phone")
        browser.close()


if __name__ == "__main__":
    main()
