"""RFC 7520 (the JOSE Cookbook) with its RFC 7797 and RFC 8037 extras, from `../shared/vectors/`.

Every key imports and exports the same members, every JWS verifies and every JWE decrypts in
each serialization the cookbook gives, deterministic signatures are reproduced, and the nested
JWT of §6 works both ways. Data caveats are described in `../shared/vectors/README.md`.
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import json
from collections.abc import Iterator
from types import ModuleType
from typing import Any, Final

import pytest
from vectors import (
    cached_jwk,
    load_json,
    rfc7520_files,
    rfc7520_id,
    rfc7520_params,
    rfc7520_path,
)

from ostiary.jose import JWK, InvalidHeader, jws, jwt
from ostiary.jose._jwa import SIGNATURE_ALGORITHMS

NESTED: Final = "6.nesting_signatures_and_encryption.json"
JWS_FILES: Final = [*rfc7520_files("jws/*.json", "rfc7797/*.json", "curve25519/jws.json"), NESTED]
JWE_FILES: Final = [*rfc7520_files("jwe/*.json", "curve25519/ecdh-es.json"), NESTED]
SERIALIZATIONS: Final = ("compact", "json", "json_flat")

# Cookbook outputs a strict implementation must refuse (README "Known upstream defects").
REFUSED_OUTPUTS: Final = {
    "rfc7797/4.2.hmac-sha2_b64_false.json": "b64 without crit: RFC 7797 §6 requires crit",
}
# A `signing` section that does not describe its own file (README): its output is still checked.
WRONG_SIGNING_SECTION: Final = {
    "rfc7797/hmac-sha2_b64_false.json": "sig-input and sig belong to another header and payload",
}
# Outputs the public signing API cannot produce; their signatures are reproduced through the
# algorithm registry by test_jws_signing_section_matches instead.
NOT_REPRODUCIBLE_BY_API: Final = {
    "jws/4_7.protecting_content_only.json": "no protected header: jws always protects alg",
    "rfc7797/4.2.hmac-sha2_b64_false.json": "its output omits crit; see the §4.2 test below",
}
# RFC 7797 §4.2: the published signature over {"alg":"HS256","b64":false,"crit":["b64"]}.$.02
RFC7797_4_2_SIGNATURE: Final = "A5dxf2s96_n5FLueVuW1Z_vh161FwXZC4YLPff6dmDY"

# RFC 7638 §3.2: the required members per key type, in lexicographic order.
THUMBPRINT_MEMBERS: Final = {
    "RSA": ("e", "kty", "n"),
    "EC": ("crv", "kty", "x", "y"),
    "OKP": ("crv", "kty", "x"),
    "oct": ("k", "kty"),
}
PRIVATE_MEMBERS: Final = ("d", "p", "q", "dp", "dq", "qi", "k")


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64u(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def section_of(relative: str, part: str) -> dict[str, Any]:
    """A JWS or JWE section: the whole file, or the `sign`/`encrypt` half of §6."""
    data: dict[str, Any] = load_json(rfc7520_path(relative))
    return data[part] if relative == NESTED else data


def jwe_module() -> ModuleType:
    """`ostiary.jose.jwe`, imported when a test runs: JWE lands apart from these tests.

    Not `from ostiary.jose import jwe`: that recurses in the package's lazy `__getattr__`
    until something has imported the submodule directly.
    """
    return importlib.import_module("ostiary.jose.jwe")


def listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def verification_key(data: dict[str, Any]) -> JWK:
    """The key a verifier holds: the public half, or the secret itself."""
    key = cached_jwk(data)
    return key if key.is_symmetric else key.public()


# -- keys (RFC 7520 §3) ----------------------------------------------------------------------


def rfc7638_thumbprint(data: dict[str, Any]) -> str:
    """RFC 7638 §3, computed here from the file's own members as the reference."""
    required = {name: data[name] for name in THUMBPRINT_MEMBERS[data["kty"]]}
    canonical = json.dumps(required, separators=(",", ":"), sort_keys=True)
    return b64u(hashlib.sha256(canonical.encode("utf-8")).digest())


@pytest.mark.parametrize(
    "relative", rfc7520_params((f, rfc7520_id(f)) for f in rfc7520_files("jwk/*.json"))
)
def test_jwk_imports_and_exports_the_same_members(relative: str) -> None:
    data = load_json(rfc7520_path(relative))
    key = JWK.from_dict(data)
    private = any(name in data for name in PRIVATE_MEMBERS)

    assert (key.kty, key.kid, key.use, key.alg, key.crv) == (
        data["kty"],
        data.get("kid"),
        data.get("use"),
        data.get("alg"),
        data.get("crv"),
    )
    assert key.is_private == private
    assert key.to_dict(private=private) == data
    if not key.is_symmetric:
        public = {k: v for k, v in data.items() if k not in PRIVATE_MEMBERS}
        assert key.to_dict(private=False) == public
        assert key.public().to_dict() == public
    assert JWK.from_dict(key.to_dict(private=private)) == key


@pytest.mark.parametrize(
    "relative", rfc7520_params((f, rfc7520_id(f)) for f in rfc7520_files("jwk/*.json"))
)
def test_jwk_thumbprint_follows_rfc7638(relative: str) -> None:
    data = load_json(rfc7520_path(relative))
    key = JWK.from_dict(data)
    expected = rfc7638_thumbprint(data)

    assert key.thumbprint() == expected
    assert key.thumbprint_uri() == f"urn:ietf:params:oauth:jwk-thumbprint:sha-256:{expected}"
    if not key.is_symmetric:
        assert key.public().thumbprint() == expected


def _key_pairs() -> Iterator[tuple[tuple[str, str], str]]:
    files = rfc7520_files("jwk/*.json")
    by_identity: dict[tuple[str, str], list[str]] = {}
    for relative in files:
        data = load_json(rfc7520_path(relative))
        by_identity.setdefault((data["kty"], data["kid"]), []).append(relative)
    for (kty, _), members in sorted(by_identity.items()):
        if len(members) == 2:
            yield (members[0], members[1]), kty


@pytest.mark.parametrize("pair", rfc7520_params(_key_pairs()))
def test_private_and_public_jwk_share_a_thumbprint(pair: tuple[str, str]) -> None:
    first, second = (JWK.from_dict(load_json(rfc7520_path(p))) for p in pair)
    assert first.is_private != second.is_private
    assert first.thumbprint() == second.thumbprint()
    assert first.public() == second.public()


# -- signatures (RFC 7520 §4, RFC 7797, RFC 8037 App. A.4, §6 inner JWS) -------------------


def _jws_outputs() -> Iterator[tuple[tuple[str, str], str]]:
    for relative in JWS_FILES:
        output = section_of(relative, "sign")["output"]
        for serialization in SERIALIZATIONS:
            if serialization in output:
                yield (relative, serialization), f"{rfc7520_id(relative)}-{serialization}"


def _is_detached(token: Any, serialization: str) -> bool:
    # RFC 7520 §4.5: the compact form has an empty payload, the JSON forms none at all.
    if serialization == "compact":
        return bool(token.split(".")[1] == "")
    return "payload" not in token


def verify_any(token: Any, key: JWK, alg: str, detached: bytes | None, serialization: str) -> bytes:
    if serialization == "compact":
        return jws.verify(token, key, algorithms=[alg], detached_payload=detached)
    return jws.verify_json(token, key, algorithms=[alg], detached_payload=detached)


@pytest.mark.parametrize("case", rfc7520_params(_jws_outputs()))
def test_jws_output_verifies(case: tuple[str, str]) -> None:
    relative, serialization = case
    section = section_of(relative, "sign")
    token = section["output"][serialization]
    payload = section["input"]["payload"].encode("utf-8")
    detached = payload if _is_detached(token, serialization) else None
    signers = zip(listed(section["input"]["key"]), listed(section["input"]["alg"]), strict=True)

    # Each signer's key alone must open the object: every signature of §4.8 is checked.
    for key_data, alg in signers:
        key = verification_key(key_data)
        if relative in REFUSED_OUTPUTS:
            with pytest.raises(InvalidHeader):
                verify_any(token, key, alg, detached, serialization)
        else:
            assert verify_any(token, key, alg, detached, serialization) == payload


def _signing_entries() -> Iterator[tuple[tuple[str, int], str]]:
    for relative in JWS_FILES:
        if relative in WRONG_SIGNING_SECTION:
            continue
        for index, _ in enumerate(listed(section_of(relative, "sign")["signing"])):
            yield (relative, index), f"{rfc7520_id(relative)}-signer{index}"


@pytest.mark.parametrize("case", rfc7520_params(_signing_entries()))
def test_jws_signing_section_matches(case: tuple[str, int]) -> None:
    """`sig` over `sig-input` through the algorithm registry: equal when deterministic."""
    relative, index = case
    section = section_of(relative, "sign")
    entry = listed(section["signing"])[index]
    key_data = listed(section["input"]["key"])[index]
    impl = SIGNATURE_ALGORITHMS[listed(section["input"]["alg"])[index]]
    signing_input = entry["sig-input"].encode("utf-8")
    signature = unb64u(entry["sig"])

    if section.get("reproducible"):
        assert impl.sign(cached_jwk(key_data), signing_input) == signature
    else:
        assert impl.verify(verification_key(key_data), signing_input, signature)


def _reproducible_outputs() -> Iterator[tuple[tuple[str, str], str]]:
    for (relative, serialization), case_id in _jws_outputs():
        if relative in NOT_REPRODUCIBLE_BY_API:
            continue
        if section_of(relative, "sign").get("reproducible"):
            yield (relative, serialization), case_id


@pytest.mark.parametrize("case", rfc7520_params(_reproducible_outputs()))
def test_jws_output_reproduced_by_signing(case: tuple[str, str]) -> None:
    relative, serialization = case
    section = section_of(relative, "sign")
    expected = section["output"][serialization]
    signing = section["signing"]
    payload = section["input"]["payload"].encode("utf-8")
    # The cookbook decides where `kid` goes, so the key carries none of its own.
    key = JWK.from_dict({k: v for k, v in section["input"]["key"].items() if k != "kid"})
    protected = dict(signing.get("protected", {}))
    alg = protected.pop("alg")
    detached = _is_detached(expected, serialization)

    if serialization == "compact":
        token = jws.sign(
            payload,
            key,
            alg=alg,
            headers=protected or None,
            detached=detached,
            b64=protected.get("b64", True),
        )
        assert token == expected
    else:
        signer = (key, alg, protected, signing.get("unprotected"))
        obj = jws.sign_json(
            payload, [signer], flatten=serialization == "json_flat", detached=detached
        )
        assert obj == expected


def test_rfc7797_section_4_2_signature_reproduced() -> None:
    relative = "rfc7797/4.2.hmac-sha2_b64_false.json"
    if relative not in JWS_FILES:
        pytest.skip(f"rfc7520/{relative} not found in ../shared/vectors")
    key = JWK.from_dict(section_of(relative, "sign")["input"]["key"])

    obj = jws.sign_json(
        b"$.02", [(key, "HS256", {"b64": False, "crit": ["b64"]}, None)], flatten=True
    )

    assert obj["payload"] == "$.02"
    assert obj["signature"] == RFC7797_4_2_SIGNATURE
    assert jws.verify_json(obj, key, algorithms=["HS256"]) == b"$.02"


# -- encryption (RFC 7520 §5, RFC 8037 App. A.6, §6 outer JWE) ----------------------------


def _jwe_outputs() -> Iterator[tuple[tuple[str, str], str]]:
    for relative in JWE_FILES:
        output = section_of(relative, "encrypt")["output"]
        for serialization in SERIALIZATIONS:
            if serialization in output:
                yield (relative, serialization), f"{rfc7520_id(relative)}-{serialization}"


def _content_encryption(section: dict[str, Any]) -> str:
    # Read enc from the header: §5.13's input misspells it "A128CBC-H256" (README).
    content = section["encrypting_content"]
    enc = {**content.get("unprotected", {}), **content.get("protected", {})}["enc"]
    return str(enc)


def _decryption_keys(section: dict[str, Any]) -> list[tuple[object, str]]:
    inp = section["input"]
    if "pwd" in inp:  # PBES2: the password is the key
        return [(inp["pwd"].encode("utf-8"), inp["alg"])]
    keys = [cached_jwk(data) for data in listed(inp["key"])]
    return list(zip(keys, listed(inp["alg"]), strict=True))


@pytest.mark.parametrize("case", rfc7520_params(_jwe_outputs()))
def test_jwe_output_decrypts(case: tuple[str, str]) -> None:
    jwe = jwe_module()
    relative, serialization = case
    section = section_of(relative, "encrypt")
    token = section["output"][serialization]
    enc = _content_encryption(section)
    plaintext = section["input"]["plaintext"].encode("utf-8")

    # Every recipient of §5.13 decrypts with its own key alone.
    for key, alg in _decryption_keys(section):
        if serialization == "compact":
            opened = jwe.decrypt(token, key, algorithms=[alg], encryptions=[enc])
        else:
            opened = jwe.decrypt_json(token, key, algorithms=[alg], encryptions=[enc])
        assert opened == plaintext


# The CEK in `encrypting_key` belongs to an epk other than the one the output uses (README).
WRONG_CEK: Final = {"curve25519/ecdh-es.json": "encrypting_key.cek does not match the epk used"}
DETERMINISTIC_KEY_WRAPS: Final = ("A128KW", "A192KW", "A256KW", "PBES2-")


def _content_encryption_cases() -> Iterator[tuple[str, str]]:
    for relative in JWE_FILES:
        if relative not in WRONG_CEK:
            yield relative, rfc7520_id(relative)


def _content_encryption_key(section: dict[str, Any]) -> bytes:
    if "cek" in section["generated"]:
        return unb64u(section["generated"]["cek"])
    if "cek" in section.get("encrypting_key", {}):  # ECDH-ES: the agreed key is the CEK
        return unb64u(section["encrypting_key"]["cek"])
    return unb64u(section["input"]["key"]["k"])  # dir (§5.6): the shared key is the CEK


@pytest.mark.parametrize("relative", rfc7520_params(_content_encryption_cases()))
def test_jwe_content_encryption_reproduced(relative: str) -> None:
    """The cookbook's CEK and IV give its ciphertext and tag (the `enc` registry, RFC 7516 §5.1)."""
    jwe = jwe_module()
    section = section_of(relative, "encrypt")
    content, generated = section["encrypting_content"], section["generated"]
    impl = jwe.CONTENT_ENCRYPTION_ALGORITHMS[_content_encryption(section)]
    # RFC 7516 §5.1 step 14: the AAD is the encoded protected header, then "." and the JWE AAD.
    aad = content.get("protected_b64u", "")
    if "aad_b64u" in generated:
        aad += "." + generated["aad_b64u"]
    plaintext = (
        unb64u(generated["plaintext_c"])  # §5.9: DEFLATE output, compressed before encryption
        if "plaintext_c" in generated
        else section["input"]["plaintext"].encode("utf-8")
    )

    ciphertext, tag = impl.encrypt_with_iv(
        _content_encryption_key(section), unb64u(generated["iv"]), plaintext, aad.encode("ascii")
    )

    assert (b64u(ciphertext), b64u(tag)) == (content["ciphertext"], content["tag"])


def _key_wrap_cases() -> Iterator[tuple[str, str]]:
    for relative in JWE_FILES:
        section = section_of(relative, "encrypt")
        alg = section["input"]["alg"]
        if isinstance(alg, str) and alg.startswith(DETERMINISTIC_KEY_WRAPS):
            yield relative, rfc7520_id(relative)


@pytest.mark.parametrize("relative", rfc7520_params(_key_wrap_cases()))
def test_jwe_key_wrap_reproduced(relative: str) -> None:
    """AES Key Wrap and PBES2 are deterministic: the cookbook's CEK wraps to its encrypted key."""
    jwe = jwe_module()
    section = section_of(relative, "encrypt")
    inp, wrapping = section["input"], section["encrypting_key"]
    impl = jwe.KEY_MANAGEMENT_ALGORITHMS[inp["alg"]]
    enc = jwe.CONTENT_ENCRYPTION_ALGORITHMS[_content_encryption(section)]
    key = JWK.from_secret(inp["pwd"].encode("utf-8")) if "pwd" in inp else cached_jwk(inp["key"])
    params = (
        {"p2s": wrapping["salt"], "p2c": wrapping["iteration_count"]} if "salt" in wrapping else {}
    )

    cek, encrypted_key = impl.wrap(key, enc, unb64u(section["generated"]["cek"]), params, {})

    assert b64u(cek) == section["generated"]["cek"]
    assert b64u(encrypted_key) == wrapping["encrypted_key"]


# -- nesting (RFC 7520 §6) -------------------------------------------------------------------


def _nested_parts() -> tuple[dict[str, Any], dict[str, Any]]:
    if NESTED not in rfc7520_files(NESTED):
        pytest.skip(f"rfc7520/{NESTED} not found in ../shared/vectors")
    return section_of(NESTED, "sign"), section_of(NESTED, "encrypt")


def test_nested_cookbook_token_decodes_as_jwt() -> None:
    sign, encrypt = _nested_parts()
    claims = json.loads(sign["input"]["payload"])

    decoded = jwt.decode(
        encrypt["output"]["compact"],
        verification_key(sign["input"]["key"]),
        algorithms=[sign["input"]["alg"]],
        decrypt_key=cached_jwk(encrypt["input"]["key"]),
        decrypt_algorithms=[encrypt["input"]["alg"]],
        encryptions=[encrypt["input"]["enc"]],
        now=claims["exp"] - 1,  # the cookbook's token expired in 2011
    )

    assert decoded == claims


def test_nested_cookbook_token_opens_step_by_step() -> None:
    jwe = jwe_module()
    sign, encrypt = _nested_parts()
    inner = jwe.decrypt(
        encrypt["output"]["compact"],
        cached_jwk(encrypt["input"]["key"]),
        algorithms=[encrypt["input"]["alg"]],
        encryptions=[encrypt["input"]["enc"]],
    )

    assert inner == sign["output"]["compact"].encode("ascii")
    payload = jws.verify(
        inner, verification_key(sign["input"]["key"]), algorithms=[sign["input"]["alg"]]
    )
    assert payload == sign["input"]["payload"].encode("utf-8")


def test_nested_jwt_round_trips_with_cookbook_keys() -> None:
    jwe = jwe_module()
    sign, encrypt = _nested_parts()
    claims = json.loads(sign["input"]["payload"])
    signing_key = cached_jwk(sign["input"]["key"])
    encryption_key = cached_jwk(encrypt["input"]["key"])
    alg, key_alg, enc = sign["input"]["alg"], encrypt["input"]["alg"], encrypt["input"]["enc"]

    token = jwt.encode(
        claims,
        signing_key,
        alg=alg,
        encrypt_key=encryption_key.public(),
        encrypt_alg=key_alg,
        enc=enc,
    )

    assert token.count(".") == 4
    header = jwt.unverified_header(token)
    assert (header["alg"], header["enc"], header["cty"]) == (key_alg, enc, "JWT")
    decoded = jwt.decode(
        token,
        signing_key.public(),
        algorithms=[alg],
        decrypt_key=encryption_key,
        decrypt_algorithms=[key_alg],
        encryptions=[enc],
        now=claims["exp"] - 1,
    )
    assert decoded == claims
    inner = jwe.decrypt(token, encryption_key, algorithms=[key_alg], encryptions=[enc])
    assert json.loads(jws.verify(inner, signing_key.public(), algorithms=[alg])) == claims
