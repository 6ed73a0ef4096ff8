"""AES-256-GCM through the OpenSSL that Python's own ssl module already loaded.

The `cryptography` package brings a second OpenSSL, built into a 15 MB library that costs the
bot about 6.5 MiB of memory to seal and open short texts; Python has already loaded OpenSSL's
libcrypto for HTTPS (discord.py), and its EVP interface is the same AES-GCM. So sealing goes
through that library, by ctypes, and `cryptography` is imported only where it cannot be found
(a Python whose ssl module has OpenSSL built in, say). Both make the same bytes: ciphertext,
then the 16-byte tag (tests/db/test_crypto.py seals with each and opens with the other).

The interface is `cryptography`'s: AESGCM(key).encrypt(nonce, data, associated) and
.decrypt(...), which raises InvalidTag for a value that does not authenticate.
"""

import ctypes
from pathlib import Path
from typing import Any, Protocol

TAG_BYTES = 16
NONCE_BYTES = 12  # GCM's own IV length: no need to set it
_GET_TAG, _SET_TAG = 0x10, 0x11  # EVP_CTRL_GCM_GET_TAG, EVP_CTRL_GCM_SET_TAG


class InvalidTag(Exception):
    """The value is not what was sealed with this key and associated data."""


class Cipher(Protocol):
    def encrypt(self, nonce: bytes, data: bytes, associated: bytes) -> bytes: ...

    def decrypt(self, nonce: bytes, data: bytes, associated: bytes) -> bytes: ...


def _loaded_libcrypto() -> str | None:
    """The libcrypto this process's ssl module uses (Linux), else the system's."""
    import _ssl  # noqa: F401  (loads libcrypto, when it is a library of its own)

    try:
        with open("/proc/self/maps", encoding="utf-8") as maps:
            for line in maps:
                path = line.split()[-1]
                if Path(path).name.startswith("libcrypto.so"):
                    return path
    except OSError:
        pass
    import ctypes.util  # (subprocess and more: only where /proc does not say)

    return ctypes.util.find_library("crypto")


def _bind(path: str) -> Any:
    lib = ctypes.CDLL(path)
    p, i, c = ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p
    signatures: dict[str, tuple[Any, list[Any]]] = {
        "OpenSSL_version_num": (ctypes.c_ulong, []),
        "EVP_aes_256_gcm": (p, []),
        "EVP_CIPHER_CTX_new": (p, []),
        "EVP_CIPHER_CTX_free": (None, [p]),
        "EVP_CIPHER_CTX_ctrl": (i, [p, i, i, p]),
        "EVP_EncryptInit_ex": (i, [p, p, p, c, c]),
        "EVP_DecryptInit_ex": (i, [p, p, p, c, c]),
        "EVP_EncryptUpdate": (i, [p, p, ctypes.POINTER(i), c, i]),
        "EVP_DecryptUpdate": (i, [p, p, ctypes.POINTER(i), c, i]),
        "EVP_EncryptFinal_ex": (i, [p, p, ctypes.POINTER(i)]),
        "EVP_DecryptFinal_ex": (i, [p, p, ctypes.POINTER(i)]),
    }
    for name, (restype, argtypes) in signatures.items():
        function = getattr(lib, name)  # AttributeError: not an OpenSSL 1.1+ libcrypto
        function.restype, function.argtypes = restype, argtypes
    if lib.OpenSSL_version_num() < 0x10100000:
        raise OSError("OpenSSL older than 1.1")
    return lib


class OpenSSLAESGCM:
    """AES-256-GCM with a 96-bit nonce and a 128-bit tag, by OpenSSL's EVP interface."""

    def __init__(self, key: bytes, lib: Any) -> None:
        if len(key) != 32:
            raise ValueError("AES-256-GCM takes a 32-byte key")
        self._key = key
        self._lib = lib
        self._cipher = lib.EVP_aes_256_gcm()

    def encrypt(self, nonce: bytes, data: bytes, associated: bytes) -> bytes:
        lib = self._lib
        if len(nonce) != NONCE_BYTES:
            raise ValueError(f"the nonce must be {NONCE_BYTES} bytes")
        ctx = lib.EVP_CIPHER_CTX_new()
        if not ctx:
            raise MemoryError("EVP_CIPHER_CTX_new")
        try:
            out = ctypes.create_string_buffer(len(data) + TAG_BYTES)
            size = ctypes.c_int(0)
            ok = lib.EVP_EncryptInit_ex(ctx, self._cipher, None, self._key, nonce)
            ok = ok and lib.EVP_EncryptUpdate(ctx, None, size, associated, len(associated))
            ok = ok and lib.EVP_EncryptUpdate(ctx, out, size, data, len(data))
            written = size.value
            tail = ctypes.byref(out, written)
            ok = ok and lib.EVP_EncryptFinal_ex(ctx, tail, size)
            written += size.value
            tag = ctypes.byref(out, written)
            ok = ok and lib.EVP_CIPHER_CTX_ctrl(ctx, _GET_TAG, TAG_BYTES, tag)
            if not ok or written != len(data):
                raise RuntimeError("OpenSSL refused to seal")
            return out.raw
        finally:
            lib.EVP_CIPHER_CTX_free(ctx)

    def decrypt(self, nonce: bytes, data: bytes, associated: bytes) -> bytes:
        lib = self._lib
        if len(nonce) != NONCE_BYTES:
            raise ValueError(f"the nonce must be {NONCE_BYTES} bytes")
        if len(data) < TAG_BYTES:
            raise InvalidTag()
        body, tag = data[:-TAG_BYTES], data[-TAG_BYTES:]
        ctx = lib.EVP_CIPHER_CTX_new()
        if not ctx:
            raise MemoryError("EVP_CIPHER_CTX_new")
        try:
            out = ctypes.create_string_buffer(max(1, len(body)))
            size = ctypes.c_int(0)
            ok = lib.EVP_DecryptInit_ex(ctx, self._cipher, None, self._key, nonce)
            ok = ok and lib.EVP_DecryptUpdate(ctx, None, size, associated, len(associated))
            ok = ok and lib.EVP_DecryptUpdate(ctx, out, size, body, len(body))
            written = size.value
            ok = ok and lib.EVP_CIPHER_CTX_ctrl(ctx, _SET_TAG, TAG_BYTES, tag)  # (copied)
            if not ok:
                raise RuntimeError("OpenSSL refused to open")
            # Final checks the tag: anything but 1 means the value does not authenticate.
            if lib.EVP_DecryptFinal_ex(ctx, ctypes.byref(out, written), size) != 1:
                raise InvalidTag()
            return out.raw[: written + size.value]
        finally:
            lib.EVP_CIPHER_CTX_free(ctx)


def _openssl() -> Any:
    try:
        path = _loaded_libcrypto()
        return _bind(path) if path else None
    except (OSError, AttributeError):
        return None


_LIB = _openssl()


def aesgcm(key: bytes) -> Cipher:
    """AES-256-GCM with `key`: by OpenSSL's libcrypto, else by `cryptography`."""
    if _LIB is not None:
        return OpenSSLAESGCM(key, _LIB)
    return _CryptographyAESGCM(key)


class _CryptographyAESGCM:
    """`cryptography`'s AESGCM, its InvalidTag raised as ours."""

    def __init__(self, key: bytes) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self._aead = AESGCM(key)

    def encrypt(self, nonce: bytes, data: bytes, associated: bytes) -> bytes:
        return self._aead.encrypt(nonce, data, associated)

    def decrypt(self, nonce: bytes, data: bytes, associated: bytes) -> bytes:
        from cryptography.exceptions import InvalidTag as CryptographyInvalidTag

        try:
            return self._aead.decrypt(nonce, data, associated)
        except CryptographyInvalidTag:
            raise InvalidTag() from None


def backend() -> str:
    """Which library seals: for the start-up log and the tests."""
    return "openssl" if _LIB is not None else "cryptography"
