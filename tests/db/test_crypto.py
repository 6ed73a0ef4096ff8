"""Encryption at rest: the key format, the key file, and owner binding."""

import stat
from pathlib import Path

import pytest

from db.crypto import (
    DataKeyError,
    DecryptionFailed,
    KeyFileCipher,
    TextCipher,
    finish_key_file_rotation,
    generate_key,
    key_id,
    load_or_create_key_file,
    parse_key,
    previous_key_file,
    read_key_file,
    start_key_file_rotation,
    write_key_file,
)


def test_round_trip_and_a_fresh_nonce_each_time() -> None:
    cipher = TextCipher(parse_key(generate_key()))
    one, two = (cipher.encrypt("same words", owner_id=1) for _ in range(2))
    assert one != two and b"same words" not in one
    assert cipher.decrypt(one, owner_id=1) == cipher.decrypt(two, owner_id=1) == "same words"


def test_a_ciphertext_moved_to_another_member_does_not_decrypt() -> None:
    cipher = TextCipher(parse_key(generate_key()))
    sealed = cipher.encrypt("alice's", owner_id=1)
    with pytest.raises(DecryptionFailed):
        cipher.decrypt(sealed, owner_id=2)


def test_the_wrong_key_does_not_decrypt() -> None:
    sealed = TextCipher(parse_key(generate_key())).encrypt("x", owner_id=1)
    with pytest.raises(DecryptionFailed):
        TextCipher(parse_key(generate_key())).decrypt(sealed, owner_id=1)


@pytest.mark.parametrize("bad", ["", "short", "!" * 44, generate_key()[:-4]])
def test_bad_keys_name_the_setting(bad: str) -> None:
    with pytest.raises(DataKeyError, match="DATA_KEY"):
        parse_key(bad)


def test_key_file_is_created_private_once_and_then_reused(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "crossroads.key"
    first = load_or_create_key_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_key_file(path) == first


def test_a_key_id_is_short_stable_and_tells_keys_apart() -> None:
    key, other = parse_key(generate_key()), parse_key(generate_key())
    assert key_id(key) == key_id(key) and key_id(key) != key_id(other)
    assert len(key_id(key)) == 12 and int(key_id(key), 16) >= 0
    assert TextCipher(key).key_id == key_id(key)


def test_sealing_uses_the_new_key_and_opening_accepts_the_previous() -> None:
    old, new = parse_key(generate_key()), parse_key(generate_key())
    before, old_id = TextCipher(old).seal("written last year", owner_id=1)
    rotating = TextCipher(new, previous=[old])
    assert rotating.key_ids == (key_id(new), key_id(old))
    after, new_id = rotating.seal("written today", owner_id=1)
    assert new_id == key_id(new) and old_id == key_id(old)
    assert rotating.decrypt(before, owner_id=1, key_id=old_id) == "written last year"
    assert rotating.decrypt(before, owner_id=1) == "written last year"  # unrecorded: tries all
    assert TextCipher(new).decrypt(after, owner_id=1, key_id=new_id) == "written today"
    with pytest.raises(DecryptionFailed, match=old_id):
        TextCipher(new).decrypt(before, owner_id=1, key_id=old_id)
    with pytest.raises(DecryptionFailed):  # the row says the new key sealed it: no other is tried
        rotating.decrypt(before, owner_id=1, key_id=new_id)
    with pytest.raises(DecryptionFailed):  # still bound to its member
        rotating.decrypt(before, owner_id=2)


def test_a_bad_previous_key_names_its_setting() -> None:
    with pytest.raises(DataKeyError, match="DATA_KEY_PREVIOUS"):
        parse_key("short", setting="DATA_KEY_PREVIOUS")


def test_key_file_rotation_steps_and_a_crash_between_them(tmp_path: Path) -> None:
    path = tmp_path / "crossroads.key"
    first = load_or_create_key_file(path)

    new, old, resumed = start_key_file_rotation(path)
    assert (old, resumed) == (first, False) and new != first
    assert read_key_file(path) == new and read_key_file(previous_key_file(path)) == first
    for file in (path, previous_key_file(path)):
        assert stat.S_IMODE(file.stat().st_mode) == 0o600
    assert start_key_file_rotation(path) == (new, first, True)  # run again: resumed
    finish_key_file_rotation(path)
    assert not previous_key_file(path).exists() and read_key_file(path) == new

    # Killed after copying the key to .previous, before writing the new one: both hold the
    # old key; the next run carries on, and no key is lost.
    write_key_file(previous_key_file(path), new)
    newer, old, resumed = start_key_file_rotation(path)
    assert (old, resumed) == (new, False) and newer not in (new, first)
    assert read_key_file(previous_key_file(path)) == new
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_a_running_bot_follows_a_rotation_of_its_key_file(tmp_path: Path) -> None:
    path = tmp_path / "crossroads.key"
    first = load_or_create_key_file(path)
    bot = KeyFileCipher(path, check_every=3600)  # the clock never forces a look: rows do
    before, first_id = bot.seal("before", owner_id=1)
    assert first_id == key_id(first)

    new, _, _ = start_key_file_rotation(path)  # rotate-key, in another process
    rotated, new_id = TextCipher(new).seal("re-sealed", owner_id=1)
    # A row sealed with a key it lacks makes it look at the files at once.
    assert bot.decrypt(rotated, owner_id=1, key_id=new_id) == "re-sealed"
    assert bot.key_id == new_id and bot.seal("after", owner_id=1)[1] == new_id
    assert bot.decrypt(before, owner_id=1, key_id=first_id) == "before"

    finish_key_file_rotation(path)
    watching = KeyFileCipher(path, check_every=0)
    assert watching.key_ids == (new_id,)
    start_key_file_rotation(path)
    assert watching.key_ids[1:] == (new_id,) and watching.key_id != new_id  # within a check


@pytest.mark.parametrize("length", [0, 1, 15, 16, 17, 300, 4000 * 4])
def test_openssl_and_cryptography_seal_alike_and_open_each_other(length: int) -> None:
    """Sealing goes through the libcrypto Python's ssl module loaded (db/aead.py), with
    `cryptography` where there is none: the same AES-256-GCM, byte for byte, either way."""
    import os

    from cryptography.exceptions import InvalidTag as CryptographyInvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from db import aead

    assert aead.backend() == "openssl"  # on Linux, where CI runs: not `cryptography`
    key, nonce, text, owner = os.urandom(32), os.urandom(12), os.urandom(length), b"user:1"
    ours, theirs = aead.aesgcm(key), AESGCM(key)
    sealed = ours.encrypt(nonce, text, owner)
    assert sealed == theirs.encrypt(nonce, text, owner)
    assert theirs.decrypt(nonce, sealed, owner) == text == ours.decrypt(nonce, sealed, owner)
    for tampered in (sealed[:-1] + bytes([sealed[-1] ^ 1]), sealed[:-1], b"short"):
        with pytest.raises(aead.InvalidTag):
            ours.decrypt(nonce, tampered, owner)
        with pytest.raises(CryptographyInvalidTag):
            theirs.decrypt(nonce, tampered, owner)
    with pytest.raises(aead.InvalidTag):
        ours.decrypt(nonce, sealed, b"user:2")


def test_without_openssl_cryptography_seals(monkeypatch: pytest.MonkeyPatch) -> None:
    from db import aead

    monkeypatch.setattr(aead, "_LIB", None)
    assert aead.backend() == "cryptography"
    cipher = TextCipher(parse_key(generate_key()))
    sealed = cipher.encrypt("kept", owner_id=1)
    assert cipher.decrypt(sealed, owner_id=1) == "kept"
    with pytest.raises(DecryptionFailed):
        cipher.decrypt(sealed, owner_id=2)
