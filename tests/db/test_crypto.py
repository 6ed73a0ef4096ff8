"""Encryption at rest: the key format, the key file, and owner binding."""

import stat
from pathlib import Path

import pytest

from db.crypto import (
    DataKeyError,
    DecryptionFailed,
    TextCipher,
    generate_key,
    load_or_create_key_file,
    parse_key,
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
