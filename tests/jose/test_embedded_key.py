"""`jwt.decode_with_embedded_key`: the one opt-in to a key carried in the token's own `jwk`
header (RFC 9449 DPoP proofs). Everything else about a JWT stays as strict as `decode`."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from ostiary.jose import InvalidHeader, JoseError, jwt
from ostiary.jose.jwk import JWK

NOW = 1_800_000_000
ALGS = ["ES256", "EdDSA", "RS256"]


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.fixture(scope="module")
def key() -> JWK:
    return JWK.generate("EC", crv="P-256", alg="ES256")


def proof(key: JWK, *, header: dict[str, Any] | None = None, **claims: Any) -> str:
    headers = {"typ": "dpop+jwt", "jwk": key.public().to_dict(), **(header or {})}
    headers = {k: v for k, v in headers.items() if v is not None}
    body = {"htm": "POST", "htu": "https://a.example/token", "iat": NOW, "jti": "j1", **claims}
    return jwt.encode(body, key, alg="ES256", headers=headers)


def test_valid_token_gives_claims_and_the_public_key(key: JWK) -> None:
    claims, found = jwt.decode_with_embedded_key(
        proof(key), algorithms=ALGS, typ="dpop+jwt", now=NOW
    )
    assert claims["jti"] == "j1"
    assert found.thumbprint() == key.thumbprint()
    assert not found.is_private


def test_decode_still_refuses_embedded_keys(key: JWK) -> None:
    with pytest.raises(InvalidHeader, match="jwk"):
        jwt.decode(proof(key), key, algorithms=ALGS, require_exp=False, now=NOW)


@pytest.mark.parametrize(
    ("header", "fragment"),
    [
        pytest.param({"jwk": None}, "no 'jwk'", id="no-jwk"),
        pytest.param({"jwk": "key"}, "no 'jwk'", id="jwk-not-an-object"),
        pytest.param({"jku": "https://evil.example/jwks"}, "jku", id="jku"),
        pytest.param({"x5u": "https://evil.example/cert"}, "x5u", id="x5u"),
        pytest.param({"typ": "JWT"}, "type", id="wrong-typ"),
        pytest.param({"typ": None}, "typ", id="no-typ"),
        pytest.param({"kid": 7}, "kid", id="kid-not-a-string"),
        pytest.param({"crit": ["exp"], "exp": 1}, "crit", id="unknown-crit"),
    ],
)
def test_bad_headers_refused(key: JWK, header: dict[str, Any], fragment: str) -> None:
    with pytest.raises(JoseError, match=fragment):
        jwt.decode_with_embedded_key(
            proof(key, header=header), algorithms=ALGS, typ="dpop+jwt", now=NOW
        )


def test_private_key_in_the_header_refused(key: JWK) -> None:
    token = proof(key, header={"jwk": key.to_dict(private=True)})
    with pytest.raises(InvalidHeader, match="public asymmetric"):
        jwt.decode_with_embedded_key(token, algorithms=ALGS, typ="dpop+jwt", now=NOW)


@pytest.mark.parametrize("member", ["d", "p", "q", "dp", "dq", "qi", "oth", "k"])
def test_private_key_member_refused_even_where_the_key_would_load_as_public(member: str) -> None:
    """RFC 7518 §6.3.2: `oth` (and the CRT members) belong to a private key only."""
    rsa = JWK.generate("RSA", size=2048, alg="RS256")
    value: object = [] if member == "oth" else rsa.to_dict(private=True).get(member, "AQAB")
    jwk = {**rsa.public().to_dict(), member: value}
    body = {"htm": "POST", "iat": NOW, "jti": "x"}
    token = jwt.encode(body, rsa, alg="RS256", headers={"typ": "dpop+jwt", "jwk": jwk})
    with pytest.raises(InvalidHeader, match="public asymmetric"):
        jwt.decode_with_embedded_key(token, algorithms=ALGS, typ="dpop+jwt", now=NOW)


def test_symmetric_key_and_hmac_refused() -> None:
    secret = JWK.generate("oct", size=256, alg="HS256")
    header = {"alg": "HS256", "typ": "dpop+jwt", "jwk": secret.to_dict(private=True)}
    token = f"{b64(json.dumps(header).encode())}.{b64(b'{}')}.{b64(b'x' * 32)}"
    with pytest.raises(JoseError):
        jwt.decode_with_embedded_key(token, algorithms=ALGS, typ="dpop+jwt", now=NOW)
    with pytest.raises(JoseError):
        jwt.decode_with_embedded_key(token, algorithms=["HS256"], typ="dpop+jwt", now=NOW)


def test_signature_by_another_key_refused(key: JWK) -> None:
    other = JWK.generate("EC", crv="P-256", alg="ES256")
    token = proof(other, header={"jwk": key.public().to_dict()})
    with pytest.raises(JoseError):
        jwt.decode_with_embedded_key(token, algorithms=ALGS, typ="dpop+jwt", now=NOW)


def test_alg_outside_the_allow_list_and_none_refused(key: JWK) -> None:
    with pytest.raises(JoseError):
        jwt.decode_with_embedded_key(proof(key), algorithms=["RS256"], typ="dpop+jwt", now=NOW)
    header = {"alg": "none", "typ": "dpop+jwt", "jwk": key.public().to_dict()}
    token = f"{b64(json.dumps(header).encode())}.{b64(b'{}')}."
    with pytest.raises(JoseError):
        jwt.decode_with_embedded_key(token, algorithms=ALGS, typ="dpop+jwt", now=NOW)


def test_key_of_another_algorithm_refused(key: JWK) -> None:
    """An EC key in the header cannot verify an RS256 signature (no algorithm confusion)."""
    rsa = JWK.generate("RSA", size=2048, alg="RS256")
    body = {"htm": "POST", "iat": NOW, "jti": "x"}
    token = jwt.encode(
        body, rsa, alg="RS256", headers={"typ": "dpop+jwt", "jwk": key.public().to_dict()}
    )
    with pytest.raises(JoseError):
        jwt.decode_with_embedded_key(token, algorithms=ALGS, typ="dpop+jwt", now=NOW)


@pytest.mark.parametrize("token", ["", "a.b", "a.b.c", "x" * 20_000, "e30.e30.e30"])
def test_garbage_raises_only_jose_errors(token: str) -> None:
    with pytest.raises(JoseError):
        jwt.decode_with_embedded_key(token, algorithms=ALGS, typ="dpop+jwt", now=NOW)


def test_future_iat_outside_the_leeway_refused(key: JWK) -> None:
    token = proof(key, iat=NOW + 120)
    with pytest.raises(JoseError):
        jwt.decode_with_embedded_key(token, algorithms=ALGS, typ="dpop+jwt", leeway=60, now=NOW)
    jwt.decode_with_embedded_key(token, algorithms=ALGS, typ="dpop+jwt", leeway=120, now=NOW)
