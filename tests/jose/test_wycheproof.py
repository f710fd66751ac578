"""Project Wycheproof (`testvectors_v1`) JOSE and primitive vectors from `../shared/vectors/`.

`valid` must succeed (and give the expected output), `invalid` must raise a `JoseError`, and
`acceptable` may do either; no other exception may escape. The README's known upstream quirks
are applied by the loader and named in the test ids.

Verification allows every algorithm the library implements (and even `none`): the worst
allow-list a caller could pass, so a refusal must come from the library's own checks (key type
bound to algorithm, the key's `alg`, `use` and `key_ops`, strict parsing), not from the list.
"""

from __future__ import annotations

import importlib
from typing import Any, Final

import pytest
from vectors import WycheproofCase, check_result, group_key, import_key, wycheproof_params

from ostiary.jose import JWK, BadSignature, jws
from ostiary.jose._jwa import SIGNATURE_ALGORITHMS

ALL_SIGNATURE_ALGORITHMS: Final = [*SIGNATURE_ALGORITHMS, "none"]


def jwe_module() -> Any:
    """`ostiary.jose.jwe`, imported when a test runs: JWE lands apart from these tests.

    Not `from ostiary.jose import jwe`: that recurses in the package's lazy `__getattr__`
    until something has imported the submodule directly.
    """
    return importlib.import_module("ostiary.jose.jwe")


def verify_jws(case: WycheproofCase) -> bytes:
    """Verify the test's JWS with the group's public key (the private one for `oct`)."""
    key = group_key(case, "public" if "public" in case.group else "private")
    # A JSON-serialized JWS handed to the compact verifier must be refused, not parsed.
    return jws.verify(case.test["jws"], key, algorithms=ALL_SIGNATURE_ALGORITHMS)


def decrypt_jwe(case: WycheproofCase) -> bytes:
    jwe = jwe_module()
    key = group_key(case, "private")
    opened: bytes = jwe.decrypt(
        case.test["jwe"],
        key,
        algorithms=list(jwe.KEY_MANAGEMENT_ALGORITHMS),
        encryptions=list(jwe.CONTENT_ENCRYPTION_ALGORITHMS),
    )
    return opened


# -- JOSE files ------------------------------------------------------------------------------


@pytest.mark.parametrize("case", wycheproof_params("json_web_signature_test.json"))
def test_json_web_signature(case: WycheproofCase) -> None:
    check_result(case, lambda: verify_jws(case))


@pytest.mark.parametrize("case", wycheproof_params("json_web_key_test.json"))
def test_json_web_key(case: WycheproofCase) -> None:
    check_result(case, lambda: verify_jws(case))


@pytest.mark.parametrize("case", wycheproof_params("json_web_crypto_test.json"))
def test_json_web_crypto(case: WycheproofCase) -> None:
    if "jwe" in case.test:
        check_result(case, lambda: decrypt_jwe(case))
    else:
        check_result(case, lambda: verify_jws(case))


@pytest.mark.parametrize("case", wycheproof_params("json_web_encryption_test.json"))
def test_json_web_encryption(case: WycheproofCase) -> None:
    expected = bytes.fromhex(case.test["pt"]) if case.result != "invalid" else None
    check_result(case, lambda: decrypt_jwe(case), expected)


# -- signature primitives through the JWS algorithm registry ---------------------------------

_PRIMITIVE_KEYS: dict[tuple[str, int], JWK] = {}


def primitive_key(case: WycheproofCase) -> JWK:
    """The group's public key as a JWK (from `publicKeyPem` where no JWK is given), cached."""
    cache_key = (case.file, case.group_index)
    if cache_key not in _PRIMITIVE_KEYS:
        group = case.group
        jwk_data = group.get("publicKeyJwk") or group.get("keyJwk")
        key = (
            JWK.from_dict(jwk_data)
            if jwk_data is not None
            else JWK.from_pem(group["publicKeyPem"].encode("ascii"))
        )
        _PRIMITIVE_KEYS[cache_key] = key
    return _PRIMITIVE_KEYS[cache_key]


def verify_primitive(case: WycheproofCase, alg: str) -> None:
    """`SIGNATURE_ALGORITHMS[alg].verify` over the raw message; False becomes `BadSignature`."""
    impl = SIGNATURE_ALGORITHMS[alg]
    msg, sig = bytes.fromhex(case.test["msg"]), bytes.fromhex(case.test["sig"])
    if not impl.verify(primitive_key(case), msg, sig):
        raise BadSignature()


@pytest.mark.parametrize("case", wycheproof_params("ecdsa_secp256r1_sha256_p1363_test.json"))
def test_ecdsa_p256_p1363_as_es256(case: WycheproofCase) -> None:
    check_result(case, lambda: verify_primitive(case, "ES256"))


@pytest.mark.parametrize("case", wycheproof_params("ed25519_test.json"))
def test_ed25519_as_eddsa(case: WycheproofCase) -> None:
    check_result(case, lambda: verify_primitive(case, "EdDSA"))


@pytest.mark.parametrize("case", wycheproof_params("rsa_pss_2048_sha256_mgf1_32_test.json"))
def test_rsa_pss_2048_sha256_as_ps256(case: WycheproofCase) -> None:
    check_result(case, lambda: verify_primitive(case, "PS256"))


@pytest.mark.parametrize("case", wycheproof_params("rsa_signature_2048_sha256_test.json"))
def test_rsa_pkcs1_2048_sha256_as_rs256(case: WycheproofCase) -> None:
    check_result(case, lambda: verify_primitive(case, "RS256"))


# -- X25519 / X448 key agreement from JWKs (RFC 8037 ECDH-ES) -------------------------------


def agree(case: WycheproofCase) -> bytes:
    """ECDH between the test's JWKs, through JWE's agreement step (refuses all-zero secrets)."""
    agreement = importlib.import_module("ostiary.jose._jwe_keys")
    private = import_key(case.test["private"])
    public = import_key(case.test["public"])
    assert isinstance(private, JWK), "the private member is a single JWK"
    assert isinstance(public, JWK), "the public member is a single JWK"
    shared: bytes = agreement._agree(private.private_key(), public.public_key())
    return shared


@pytest.mark.parametrize("case", wycheproof_params("x25519_jwk_test.json"))
def test_x25519_jwk_agreement(case: WycheproofCase) -> None:
    check_result(case, lambda: agree(case), bytes.fromhex(case.test["shared"]))


@pytest.mark.parametrize("case", wycheproof_params("x448_jwk_test.json"))
def test_x448_jwk_agreement(case: WycheproofCase) -> None:
    check_result(case, lambda: agree(case), bytes.fromhex(case.test["shared"]))
