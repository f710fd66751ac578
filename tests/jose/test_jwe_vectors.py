"""Known answers from the RFC texts: RFC 7518 App. B (AES-CBC-HMAC-SHA2), App. C (ECDH-ES
key agreement), and RFC 7748 §6.1 (X25519) carried through an ECDH-ES JWE.

The RFC 7520 cookbook vectors run in test_rfc7520.py.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ostiary.jose import DecryptionFailed, jwe, jwk
from ostiary.jose._jwe_content import CONTENT_ENCRYPTION

# RFC 7518 App. B: the same plaintext, IV and AAD for all three algorithms; K = 00 01 02 ...
KERCKHOFFS_P = (
    b"A cipher system must not be required to be secret, and it must be able to fall into "
    b"the hands of the enemy without inconvenience"
)
KERCKHOFFS_A = b"The second principle of Auguste Kerckhoffs"
KERCKHOFFS_IV = bytes.fromhex("1af38c2dc2b96ffdd86694092341bc04")
APPENDIX_B = {
    # enc: (key bytes, first block of E, T)
    "A128CBC-HS256": (32, "c80edfa32ddf39d5ef00c0b468834279", "652c3fa36b0a7c5b3219fab3a30bc1c4"),
    "A192CBC-HS384": (
        48,
        "ea65da6b59e61edb419be62d19712ae5",
        "8490ac0e58949bfe51875d733f93ac2075168039ccc733d7",
    ),
    "A256CBC-HS512": (
        64,
        "4affaaadb78c31c5da4b1b590d10ffbd",
        "4dd3b4c088a7f45c216839645b2012bf2e6269a8c56a816dbc1b267761955bc5",
    ),
}


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@pytest.mark.parametrize("enc", list(APPENDIX_B))
def test_rfc7518_appendix_b_aes_cbc_hmac_sha2(enc: str) -> None:
    size, first_block, tag = APPENDIX_B[enc]
    key = bytes(range(size))
    ce = CONTENT_ENCRYPTION[enc]
    ciphertext, got_tag = ce.encrypt_with_iv(key, KERCKHOFFS_IV, KERCKHOFFS_P, KERCKHOFFS_A)
    assert ciphertext[:16].hex() == first_block
    assert got_tag.hex() == tag  # the tag covers all of E, so E matches too
    assert ce.decrypt(key, KERCKHOFFS_IV, ciphertext, got_tag, KERCKHOFFS_A) == KERCKHOFFS_P
    with pytest.raises(DecryptionFailed):
        ce.decrypt(key, KERCKHOFFS_IV, ciphertext, got_tag, KERCKHOFFS_A + b".")


# RFC 7518 App. C: Alice's ephemeral key, Bob's static key, "Alice"/"Bob" party info, and the
# derived A128GCM key.
ALICE_EPHEMERAL = {
    "kty": "EC",
    "crv": "P-256",
    "x": "gI0GAILBdu7T53akrFmMyGcsF3n5dO7MmwNBHKW5SV0",
    "y": "SLW_xSffzlPWrHEVI30DHM_4egVwt3NQqeUD7nMFpps",
}
BOB = {
    "kty": "EC",
    "crv": "P-256",
    "x": "weNJy2HscCSM6AEDTDg04biOvhFhyyWvOHQfeF_PxMQ",
    "y": "e8lnCO-AlStT-NJVX-crhB7QRYhiix03illJOVAOyck",
    "d": "VEmDZpDXXK8p8N0Cndsxs924q6nS1RXFASRl6BfUqdw",
}
APPENDIX_C_KEY = "VqqN6vgjbSBcIijNcacQGg"


def gcm_compact(header: dict[str, object], key: bytes, plaintext: bytes) -> str:
    segment = b64u(json.dumps(header, separators=(",", ":")).encode())
    iv = os.urandom(12)
    sealed = AESGCM(key).encrypt(iv, plaintext, segment.encode("ascii"))
    return ".".join((segment, "", b64u(iv), b64u(sealed[:-16]), b64u(sealed[-16:])))


def test_rfc7518_appendix_c_ecdh_es_key_agreement() -> None:
    header = {
        "alg": "ECDH-ES",
        "enc": "A128GCM",
        "apu": "QWxpY2U",
        "apv": "Qm9i",
        "epk": ALICE_EPHEMERAL,
    }
    token = gcm_compact(header, b64d(APPENDIX_C_KEY), b"Appendix C")
    bob = jwk.JWK.from_dict(BOB)
    call = {"algorithms": ["ECDH-ES"], "encryptions": ["A128GCM"]}
    assert jwe.decrypt(token, bob, **call) == b"Appendix C"
    # The party info is bound into the key: with the parties swapped it does not come out.
    swapped = {**header, "apu": "Qm9i", "apv": "QWxpY2U"}
    unbound = gcm_compact(swapped, b64d(APPENDIX_C_KEY), b"Appendix C")
    with pytest.raises(DecryptionFailed):
        jwe.decrypt(unbound, bob, **call)


# RFC 7748 §6.1: Alice's and Bob's X25519 keys and their shared secret K.
X25519_ALICE_PUBLIC = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
X25519_BOB_PRIVATE = "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"
X25519_BOB_PUBLIC = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"
X25519_SHARED = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"


def concat_kdf_sha256(shared: bytes, algorithm_id: bytes, size: int) -> bytes:
    """RFC 7518 §4.6.2 for outputs of at most 32 bytes, written out independently."""

    def field(data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + data

    other_info = field(algorithm_id) + field(b"") + field(b"") + (size * 8).to_bytes(4, "big")
    return hashlib.sha256(b"\x00\x00\x00\x01" + shared + other_info).digest()[:size]


@pytest.mark.parametrize(("alg", "enc"), [("ECDH-ES", "A256GCM"), ("ECDH-ES+A128KW", "A128GCM")])
def test_rfc7748_x25519_shared_secret_through_ecdh_es(alg: str, enc: str) -> None:
    bob = jwk.JWK.from_dict(
        {
            "kty": "OKP",
            "crv": "X25519",
            "x": b64u(bytes.fromhex(X25519_BOB_PUBLIC)),
            "d": b64u(bytes.fromhex(X25519_BOB_PRIVATE)),
        }
    )
    epk = {"kty": "OKP", "crv": "X25519", "x": b64u(bytes.fromhex(X25519_ALICE_PUBLIC))}
    header: dict[str, object] = {"alg": alg, "enc": enc, "epk": epk}
    shared = bytes.fromhex(X25519_SHARED)
    if alg == "ECDH-ES":
        token = gcm_compact(header, concat_kdf_sha256(shared, enc.encode(), 32), b"RFC 7748")
    else:
        from cryptography.hazmat.primitives.keywrap import aes_key_wrap

        kek = concat_kdf_sha256(shared, alg.encode(), 16)
        cek = os.urandom(16)
        parts = gcm_compact(header, cek, b"RFC 7748").split(".")
        parts[1] = b64u(aes_key_wrap(kek, cek))
        token = ".".join(parts)
    assert jwe.decrypt(token, bob, algorithms=[alg], encryptions=[enc]) == b"RFC 7748"
