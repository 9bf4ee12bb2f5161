"""Endpoint secrets encrypted at rest (AES-256-GCM), so a database dump alone reveals none.

Stored form: ``enc:v1:`` + base64(12-byte nonce + ciphertext + tag). The row's id is the
associated data, so a sealed secret copied onto another endpoint does not open.
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

if TYPE_CHECKING:
    from postback.config import Settings

PREFIX = "enc:v1:"


class SecretKeyError(ValueError):
    """The master key is missing, malformed, or not the one the data was sealed with."""


def parse_key(text: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise SecretKeyError("POSTBACK_SECRET_KEY must be base64 of 32 bytes") from None
    if len(key) != 32:
        raise SecretKeyError("POSTBACK_SECRET_KEY must be base64 of 32 bytes")
    return key


def new_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def key_file_for(database_url: str) -> Path:
    """Where the embedded default keeps its generated key: beside the SQLite file."""
    path = database_url.split(":///", 1)[1] if ":///" in database_url else "postback.db"
    return Path(path).with_suffix(".key")


def load_or_create_key_file(path: Path) -> tuple[bytes, bool]:
    """The key in ``path``, creating it (mode 0600) when absent. Returns (key, created)."""
    if path.exists():
        return parse_key(path.read_text()), False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(new_key() + "\n")
    return parse_key(path.read_text()), True


class SecretBox:
    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def seal(self, plaintext: str, row_id: str) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), row_id.encode())
        return PREFIX + base64.b64encode(nonce + sealed).decode()

    def open(self, stored: str, row_id: str) -> str:
        if not stored.startswith(PREFIX):
            raise SecretKeyError("stored secret is not sealed")
        raw = base64.b64decode(stored[len(PREFIX) :])
        try:
            return self._aead.decrypt(raw[:12], raw[12:], row_id.encode()).decode()
        except InvalidTag:
            raise SecretKeyError(
                "cannot decrypt an endpoint secret: POSTBACK_SECRET_KEY is not the key "
                "the data was written with"
            ) from None


def secret_box_for(settings: Settings) -> tuple[SecretBox, str | None]:
    """The box for these settings, and a note to print when a key file was just created."""
    if settings.secret_key:
        return SecretBox(parse_key(settings.secret_key)), None
    if not settings.is_sqlite:
        raise SecretKeyError(
            "POSTBACK_SECRET_KEY is required with PostgreSQL (every process must share it); "
            "make one with: openssl rand -base64 32"
        )
    path = key_file_for(settings.database_url)
    key, created = load_or_create_key_file(path)
    note = f"generated the key that encrypts endpoint secrets: {path} (mode 0600; back it up)"
    return SecretBox(key), note if created else None
