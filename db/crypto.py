"""Encryption at rest for what members write (reflections, decision reasons).

AES-256-GCM with a random 96-bit nonce per value. The owner's user id is bound in as
associated data, so a ciphertext copied into another member's row does not decrypt.
Stored layout: version byte | nonce (12) | ciphertext+tag.
"""

import base64
import binascii
import logging
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

log = logging.getLogger(__name__)

KEY_BYTES = 32
NONCE_BYTES = 12
FORMAT_VERSION = b"\x01"


class DataKeyError(ValueError):
    """DATA_KEY cannot be used; the message is one line for the operator."""


class DecryptionFailed(Exception):
    """Stored text could not be decrypted: wrong DATA_KEY, or the row was tampered with."""


def generate_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode()


def parse_key(encoded: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(encoded.strip().encode())
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != KEY_BYTES:
        raise DataKeyError(
            "DATA_KEY must be 32 random bytes in URL-safe base64 (44 characters); "
            "make one with: python -c 'import db.crypto as c; print(c.generate_key())'"
        )
    return key


def load_or_create_key_file(path: Path) -> bytes:
    """The key kept beside an SQLite database; created (mode 0600) on first run."""
    if path.exists():
        try:
            encoded = path.read_bytes().decode("ascii")
        except UnicodeDecodeError:
            raise DataKeyError(
                "it holds bytes that are not ASCII text, where the key's 44 characters of "
                "URL-safe base64 belong (restore it from your backup)"
            ) from None
        return parse_key(encoded)
    path.parent.mkdir(parents=True, exist_ok=True)
    encoded = generate_key()
    # O_EXCL: two processes starting at once must not each write a different key.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(encoded + "\n")
    log.warning(
        "created the encryption key for members' writing at %s: back it up with the database; "
        "without it the reflections cannot be read",
        path.resolve(),
    )
    return parse_key(encoded)


class TextCipher:
    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise DataKeyError("DATA_KEY must be 32 bytes")
        self._aead = AESGCM(key)

    def encrypt(self, text: str, *, owner_id: int) -> bytes:
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, text.encode("utf-8"), _associated(owner_id))
        return FORMAT_VERSION + nonce + sealed

    def decrypt(self, blob: bytes, *, owner_id: int) -> str:
        if blob[:1] != FORMAT_VERSION:
            raise DecryptionFailed("unknown format")
        nonce, sealed = blob[1 : 1 + NONCE_BYTES], blob[1 + NONCE_BYTES :]
        try:
            return self._aead.decrypt(nonce, sealed, _associated(owner_id)).decode("utf-8")
        except InvalidTag:
            raise DecryptionFailed("wrong key or tampered value") from None


def _associated(owner_id: int) -> bytes:
    return f"crossroads:user:{owner_id}".encode()
