"""JWE content encryption (RFC 7518 §5): AES-CBC with HMAC-SHA2, and AES-GCM."""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable
from functools import lru_cache
from typing import Any, Final, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ._errors import DecryptionFailed


class ContentEncryption(Protocol):
    """An `enc` algorithm: authenticated encryption of the plaintext under the CEK."""

    @property
    def name(self) -> str: ...
    @property
    def key_size(self) -> int:
        """CEK length in bytes."""
        ...

    @property
    def iv_size(self) -> int: ...
    @property
    def tag_size(self) -> int: ...

    def encrypt(
        self, cek: bytes, plaintext: bytes, aad: bytes, *, reuse: bool = False
    ) -> tuple[bytes, bytes, bytes]:
        """Return `(iv, ciphertext, tag)` under a fresh random IV."""
        ...

    def encrypt_with_iv(
        self, cek: bytes, iv: bytes, plaintext: bytes, aad: bytes, *, reuse: bool = False
    ) -> tuple[bytes, bytes]:
        """Return `(ciphertext, tag)`; the caller owns IV uniqueness (known-answer tests)."""
        ...

    def decrypt(
        self,
        cek: bytes,
        iv: bytes,
        ciphertext: bytes,
        tag: bytes,
        aad: bytes,
        *,
        reuse: bool = False,
    ) -> bytes:
        """Return the plaintext; `DecryptionFailed` on any failure."""
        ...


@lru_cache(maxsize=64)
def aesgcm_for(key: bytes) -> AESGCM:
    """An `AESGCM` for a long-lived key (a `dir` CEK or a GCMKW key-encryption key).

    Building one costs more than encrypting a short token, so keys that outlive one message
    keep theirs. One-time CEKs never come here: the cache would only hold on to them.
    """
    return AESGCM(key)


class AesGcm:
    """A128GCM, A192GCM, A256GCM (RFC 7518 §5.3): 96-bit IV, 128-bit tag."""

    __slots__ = ("key_size", "name")

    iv_size: Final = 12
    tag_size: Final = 16

    def __init__(self, name: str, key_size: int) -> None:
        self.name = name
        self.key_size = key_size

    def encrypt(
        self, cek: bytes, plaintext: bytes, aad: bytes, *, reuse: bool = False
    ) -> tuple[bytes, bytes, bytes]:
        iv = os.urandom(12)
        sealed = (aesgcm_for(cek) if reuse else AESGCM(cek)).encrypt(iv, plaintext, aad)
        return iv, sealed[:-16], sealed[-16:]

    def encrypt_with_iv(
        self, cek: bytes, iv: bytes, plaintext: bytes, aad: bytes, *, reuse: bool = False
    ) -> tuple[bytes, bytes]:
        sealed = (aesgcm_for(cek) if reuse else AESGCM(cek)).encrypt(iv, plaintext, aad)
        return sealed[:-16], sealed[-16:]

    def decrypt(
        self,
        cek: bytes,
        iv: bytes,
        ciphertext: bytes,
        tag: bytes,
        aad: bytes,
        *,
        reuse: bool = False,
    ) -> bytes:
        if len(cek) != self.key_size or len(iv) != 12 or len(tag) != 16:
            raise DecryptionFailed()
        try:
            aead = aesgcm_for(cek) if reuse else AESGCM(cek)
            return aead.decrypt(iv, ciphertext + tag, aad)
        except (InvalidTag, ValueError, OverflowError):
            raise DecryptionFailed() from None


class AesCbcHmac:
    """A128CBC-HS256, A192CBC-HS384, A256CBC-HS512 (RFC 7518 §5.2).

    The CEK is MAC_KEY || ENC_KEY; the tag is the first half of
    HMAC(MAC_KEY, A || IV || E || AL). The tag is checked, in constant time, before any
    decryption or unpadding, so padding errors never become an oracle.
    """

    __slots__ = ("_digest", "_half", "key_size", "name", "tag_size")

    iv_size: Final = 16

    def __init__(self, name: str, key_size: int, digest: Callable[..., Any]) -> None:
        self.name = name
        self.key_size = key_size
        self._half = key_size // 2
        self.tag_size = key_size // 2
        self._digest = digest

    def _tag(self, mac_key: bytes, aad: bytes, iv: bytes, ciphertext: bytes) -> bytes:
        mac = hmac.new(mac_key, aad, self._digest)
        mac.update(iv)
        mac.update(ciphertext)
        mac.update((len(aad) * 8).to_bytes(8, "big"))  # AL: AAD length in bits, 64-bit
        return mac.digest()[: self._half]

    def encrypt(
        self, cek: bytes, plaintext: bytes, aad: bytes, *, reuse: bool = False
    ) -> tuple[bytes, bytes, bytes]:
        iv = os.urandom(16)
        ciphertext, tag = self.encrypt_with_iv(cek, iv, plaintext, aad)
        return iv, ciphertext, tag

    def encrypt_with_iv(
        self, cek: bytes, iv: bytes, plaintext: bytes, aad: bytes, *, reuse: bool = False
    ) -> tuple[bytes, bytes]:
        if len(cek) != self.key_size:
            raise ValueError(f"{self.name} needs a {self.key_size * 8}-bit key")
        half = self._half
        pad = 16 - len(plaintext) % 16  # PKCS #7
        encryptor = Cipher(algorithms.AES(cek[half:]), modes.CBC(iv)).encryptor()
        ciphertext = encryptor.update(plaintext + bytes((pad,)) * pad) + encryptor.finalize()
        return ciphertext, self._tag(cek[:half], aad, iv, ciphertext)

    def decrypt(
        self,
        cek: bytes,
        iv: bytes,
        ciphertext: bytes,
        tag: bytes,
        aad: bytes,
        *,
        reuse: bool = False,
    ) -> bytes:
        half = self._half
        if (
            len(cek) != self.key_size
            or len(iv) != 16
            or len(tag) != half
            or not ciphertext
            or len(ciphertext) % 16
        ):
            raise DecryptionFailed()
        if not hmac.compare_digest(self._tag(cek[:half], aad, iv, ciphertext), tag):
            raise DecryptionFailed()
        decryptor = Cipher(algorithms.AES(cek[half:]), modes.CBC(iv)).decryptor()
        padded = decryptor.update(ciphertext) + decryptor.finalize()
        pad = padded[-1]
        # Only an authentic ciphertext reaches this check, so it leaks nothing to a forger.
        if not 1 <= pad <= 16 or padded[-pad:] != bytes((pad,)) * pad:
            raise DecryptionFailed()
        return padded[:-pad]


CONTENT_ENCRYPTION: Final[dict[str, ContentEncryption]] = {
    "A128CBC-HS256": AesCbcHmac("A128CBC-HS256", 32, hashlib.sha256),
    "A192CBC-HS384": AesCbcHmac("A192CBC-HS384", 48, hashlib.sha384),
    "A256CBC-HS512": AesCbcHmac("A256CBC-HS512", 64, hashlib.sha512),
    "A128GCM": AesGcm("A128GCM", 16),
    "A192GCM": AesGcm("A192GCM", 24),
    "A256GCM": AesGcm("A256GCM", 32),
}
"""Every supported `enc` value, by name."""
