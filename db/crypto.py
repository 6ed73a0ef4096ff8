"""Encryption at rest for what members write (reflections, decision reasons).

AES-256-GCM with a random 96-bit nonce per value. The owner's user id is bound in as
associated data, so a ciphertext copied into another member's row does not decrypt.
Stored layout: version byte | nonce (12) | ciphertext+tag.

Keys rotate (`python bot.py rotate-key`, db/rotation.py): a cipher seals with its current key
and opens with it or with the previous one, and every row records the id of the key that
sealed it (`key_id`, a short one-way digest of the key, never the key).
"""

import base64
import binascii
import contextlib
import hashlib
import logging
import os
import secrets
import time
from collections.abc import Iterable
from pathlib import Path

from db.aead import InvalidTag, aesgcm
from db.files import sync_directory

log = logging.getLogger(__name__)

KEY_BYTES = 32
NONCE_BYTES = 12
FORMAT_VERSION = b"\x01"
KEY_ID_CHARS = 12  # hex: 48 bits of SHA-256, enough to tell an operator's few keys apart
# How often a running bot looks at its key files for a rotation (one stat() each).
KEY_FILE_CHECK_SECONDS = 1.0


class DataKeyError(ValueError):
    """DATA_KEY cannot be used; the message is one line for the operator."""


class DecryptionFailed(Exception):
    """Stored text could not be decrypted: wrong DATA_KEY, or the row was tampered with."""


def generate_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode()


def parse_key(encoded: str, *, setting: str = "DATA_KEY") -> bytes:
    try:
        key = base64.urlsafe_b64decode(encoded.strip().encode())
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != KEY_BYTES:
        raise DataKeyError(
            f"{setting} must be 32 random bytes in URL-safe base64 (44 characters); "
            "make one with: python -c 'import db.crypto as c; print(c.generate_key())'"
        )
    return key


def key_id(key: bytes) -> str:
    """A key's public name: which key sealed a row, which keys a backup needs.

    The first bytes of a labelled SHA-256 of the key, in hex: it tells keys apart and
    reveals nothing that would help find one. `python -c 'import db.crypto as c;
    print(c.key_id(c.parse_key("<key>")))'` names a key kept elsewhere.
    """
    return hashlib.sha256(b"crossroads data key id\x00" + key).hexdigest()[:KEY_ID_CHARS]


class TextCipher:
    """Seals with the current key; opens with the current key or a previous one.

    `previous` keys are accepted for reading while a rotation re-seals what they sealed;
    writing always uses `key`.
    """

    def __init__(self, key: bytes, *, previous: Iterable[bytes] = ()) -> None:
        self._use(key, previous)

    def _use(self, key: bytes, previous: Iterable[bytes]) -> None:
        if len(key) != KEY_BYTES:
            raise DataKeyError("DATA_KEY must be 32 bytes")
        openers = {key_id(key): aesgcm(key)}
        for old in previous:
            if len(old) != KEY_BYTES:
                raise DataKeyError("DATA_KEY_PREVIOUS must be 32 bytes")
            openers.setdefault(key_id(old), aesgcm(old))
        self._key_id, self._sealer = next(iter(openers.items()))
        self._openers = openers  # the current key first

    @property
    def key_id(self) -> str:
        """The id of the key new writing is sealed with (stored beside it)."""
        self._refresh()
        return self._key_id

    @property
    def key_ids(self) -> tuple[str, ...]:
        """Every key this cipher opens, the current one first."""
        self._refresh()
        return tuple(self._openers)

    def seal(self, text: str, *, owner_id: int) -> tuple[bytes, str]:
        """(ciphertext, id of the key that sealed it): store both."""
        self._refresh()
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = self._sealer.encrypt(nonce, text.encode("utf-8"), _associated(owner_id))
        return FORMAT_VERSION + nonce + sealed, self._key_id

    def encrypt(self, text: str, *, owner_id: int) -> bytes:
        return self.seal(text, owner_id=owner_id)[0]

    def decrypt(self, blob: bytes, *, owner_id: int, key_id: str | None = None) -> str:
        """The text; `key_id` is the key the row says sealed it (None: unrecorded, so every
        key this cipher holds is tried, the current one first)."""
        if blob[:1] != FORMAT_VERSION:
            raise DecryptionFailed("unknown format")
        if key_id is None:
            self._refresh()
            candidates = list(self._openers.values())
        else:
            opener = self._openers.get(key_id)
            if opener is None:
                self._refresh(now=True)  # a key file may have just rotated
                opener = self._openers.get(key_id)
            if opener is None:
                raise DecryptionFailed(f"sealed with key {key_id}, which is not configured")
            candidates = [opener]
        nonce, sealed = blob[1 : 1 + NONCE_BYTES], blob[1 + NONCE_BYTES :]
        for opener in candidates:
            try:
                return opener.decrypt(nonce, sealed, _associated(owner_id)).decode("utf-8")
            except InvalidTag:
                continue
        raise DecryptionFailed("wrong key or tampered value")

    def _refresh(self, *, now: bool = False) -> None:
        """Fixed keys never change; see KeyFileCipher."""


def _associated(owner_id: int) -> bytes:
    return f"crossroads:user:{owner_id}".encode()


# The key file beside an SQLite database (when DATA_KEY is not set) ----------------------------


def previous_key_file(path: Path) -> Path:
    """Where the key being rotated away from is kept until the rotation ends."""
    return path.with_name(path.name + ".previous")


def read_key_file(path: Path) -> bytes:
    try:
        encoded = path.read_bytes().decode("ascii")
    except UnicodeDecodeError:
        raise DataKeyError(
            "it holds bytes that are not ASCII text, where the key's 44 characters of "
            "URL-safe base64 belong (restore it from your backup)"
        ) from None
    return parse_key(encoded)


def load_or_create_key_file(path: Path) -> bytes:
    """The key kept beside an SQLite database; created (mode 0600) on first run."""
    if path.exists():
        return read_key_file(path)
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


def write_key_file(path: Path, key: bytes) -> None:
    """Replace `path` with `key` atomically (mode 0600): a crash leaves the old file or the
    new one, never half of either, and the new name is durable when this returns."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(base64.urlsafe_b64encode(key).decode() + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    sync_directory(path.parent)


def remove_key_file(path: Path) -> None:
    path.unlink(missing_ok=True)
    sync_directory(path.parent)


def start_key_file_rotation(path: Path) -> tuple[bytes, bytes, bool]:
    """(new key, old key, resumed): the key files set up for a rotation, or found so.

    In order, each step atomic: the current key is copied to `<key>.previous`, then a new
    key replaces `<key>`. A crash between the two leaves both files holding the old key,
    which the next run recognises and carries on from; once `<key>.previous` holds another
    key than `<key>`, a rotation is under way and is resumed, never started over.
    """
    previous = previous_key_file(path)
    current = read_key_file(path)
    if previous.exists():
        old = read_key_file(previous)
        if old != current:
            return current, old, True
    else:
        write_key_file(previous, current)
    new = secrets.token_bytes(KEY_BYTES)
    write_key_file(path, new)
    return new, current, False


def finish_key_file_rotation(path: Path) -> None:
    """Every row is sealed with the new key: the previous key file goes."""
    remove_key_file(previous_key_file(path))


class KeyFileCipher(TextCipher):
    """The key file beside an SQLite database and, while `rotate-key` runs, the previous key
    beside it. Both are looked at again (a stat() at most every second, and at once when a
    row names a key this cipher lacks), so a running bot follows a rotation without a
    restart: it seals with the new key as soon as it is written and stops opening the old
    one when the rotation ends."""

    def __init__(self, path: Path, *, check_every: float = KEY_FILE_CHECK_SECONDS) -> None:
        self.path = path
        self._check_every = check_every
        self._stamp = self._files_stamp()
        key = read_key_file(path)
        previous = previous_key_file(path)
        super().__init__(key, previous=[read_key_file(previous)] if previous.exists() else [])
        self._next_check = time.monotonic() + check_every

    def _files_stamp(self) -> tuple[tuple[int, int, int] | None, ...]:
        stamps: list[tuple[int, int, int] | None] = []
        for file in (self.path, previous_key_file(self.path)):
            try:
                info = file.stat()
            except FileNotFoundError:
                stamps.append(None)
                continue
            stamps.append((info.st_ino, info.st_mtime_ns, info.st_size))
        return tuple(stamps)

    def _refresh(self, *, now: bool = False) -> None:
        moment = time.monotonic()
        if not now and moment < self._next_check:
            return
        self._next_check = moment + self._check_every
        try:
            stamp = self._files_stamp()
            if stamp == self._stamp:
                return
            key = read_key_file(self.path)
            previous = previous_key_file(self.path)
            older = [read_key_file(previous)] if stamp[1] is not None else []
        except (OSError, DataKeyError) as exc:
            log.warning(
                "key file %s changed but cannot be read (%s); keeping the keys in use",
                self.path,
                exc,
            )
            return
        self._use(key, older)
        self._stamp = stamp
        log.info(
            "key file %s changed: sealing with key %s, opening %s",
            self.path,
            self._key_id,
            ", ".join(self._openers),
        )
