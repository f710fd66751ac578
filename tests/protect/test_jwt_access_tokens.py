"""RFC 9068 access tokens at the resource server: what is accepted, and every attack refused
with `invalid_token` and a description that says what failed without echoing the token."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from protect_issuer import AUDIENCE, ISSUER, FakeIssuer

from ostiary.jose import jwt
from ostiary.jose.jwk import JWK
from ostiary.protect import (
    Credentials,
    InsufficientScope,
    InvalidToken,
    ProtectError,
    ResourceServer,
    require_scopes,
)

pytestmark = pytest.mark.anyio


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    return ".".join(
        (b64(json.dumps(header).encode()), b64(json.dumps(claims).encode()), b64(signature))
    )


async def refused(api: ResourceServer, token: str) -> str:
    with pytest.raises(InvalidToken) as caught:
        await api.verify(Credentials(token=token))
    description = caught.value.description
    assert token not in description
    return description


async def test_valid_token_gives_its_claims(api: ResourceServer, issuer: FakeIssuer) -> None:
    claims = await api.verify(Credentials(token=issuer.token()))
    assert (claims["sub"], claims["client_id"], claims["scope"]) == (
        "user-1",
        "app-1",
        "notes:read",
    )


async def test_audience_array_naming_this_api_accepted(
    api: ResourceServer, issuer: FakeIssuer
) -> None:
    token = issuer.token(aud=["https://other.example", AUDIENCE])
    assert (await api.verify(Credentials(token=token)))["aud"][1] == AUDIENCE


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        pytest.param({"exp": 1_800_000_000 - 11}, "expired", id="expired"),
        pytest.param({"exp": 1_800_000_000}, None, id="expired-within-leeway-ok"),
        pytest.param({"nbf": 1_800_000_000 + 60}, "not valid yet", id="not-yet-valid-nbf"),
        pytest.param({"iat": 1_800_000_000 + 60}, "not valid yet", id="issued-in-the-future"),
        pytest.param({"aud": "https://billing.example"}, "not meant for this API", id="wrong-aud"),
        pytest.param({"aud": None}, "no aud claim", id="no-aud"),
        pytest.param({"iss": "https://evil.example"}, "another issuer", id="wrong-issuer"),
        pytest.param({"iss": None}, "no iss claim", id="no-iss"),
        pytest.param({"exp": None}, "no exp claim", id="no-exp"),
        pytest.param({"sub": None}, "no sub claim", id="no-sub"),
        pytest.param({"client_id": None}, "no client_id claim", id="no-client-id"),
        pytest.param({"jti": None}, "no jti claim", id="no-jti"),
        pytest.param({"exp": "tomorrow"}, "could not be verified", id="exp-not-a-number"),
    ],
)
async def test_claims_checked(
    api: ResourceServer, issuer: FakeIssuer, overrides: dict[str, Any], fragment: str | None
) -> None:
    token = issuer.token(**overrides)
    if fragment is None:
        await api.verify(Credentials(token=token))
        return
    assert fragment in await refused(api, token)


@pytest.mark.parametrize("typ", ["JWT", "id_token+jwt", "dpop+jwt", None])
async def test_wrong_type_refused(api: ResourceServer, issuer: FakeIssuer, typ: str | None) -> None:
    """RFC 9068 §4: an ID token or any other JWT signed by the issuer is not an access token."""
    token = issuer.token(headers={"typ": typ} if typ else {"typ": "JWT"})
    if typ is None:
        header = jwt.unverified_header(token)
        assert header["typ"] == "JWT"
    assert "typ must be at+jwt" in await refused(api, token)


async def test_application_at_jwt_type_accepted(api: ResourceServer, issuer: FakeIssuer) -> None:
    await api.verify(Credentials(token=issuer.token(headers={"typ": "application/at+jwt"})))


async def test_forged_signature_refused(api: ResourceServer, issuer: FakeIssuer) -> None:
    forger = JWK.generate("EC", crv="P-256", alg="ES256", kid=issuer.key.kid)
    assert "could not be verified" in await refused(api, issuer.token(forger))


async def test_tampered_claims_refused(api: ResourceServer, issuer: FakeIssuer) -> None:
    header, _, signature = issuer.token().split(".")
    claims = b64(json.dumps(issuer.claims(scope="notes:read notes:write admin")).encode())
    await refused(api, f"{header}.{claims}.{signature}")


async def test_alg_none_refused(api: ResourceServer, issuer: FakeIssuer) -> None:
    token = unsigned({"alg": "none", "typ": "at+jwt", "kid": "k1"}, issuer.claims())
    assert "malformed" in await refused(api, token) or "algorithm" in await refused(api, token)


async def test_hmac_with_the_public_key_as_secret_refused(
    api: ResourceServer, issuer: FakeIssuer
) -> None:
    """Key confusion: an HS256 token keyed with the issuer's public key bytes."""
    public_pem = issuer.key.public().to_pem()
    header = b64(json.dumps({"alg": "HS256", "typ": "at+jwt", "kid": "k1"}).encode())
    claims = b64(json.dumps(issuer.claims()).encode())
    mac = hmac.new(public_pem, f"{header}.{claims}".encode(), hashlib.sha256).digest()
    token = f"{header}.{claims}.{b64(mac)}"
    assert "algorithm this API refuses" in await refused(api, token)


async def test_rsa_alg_with_an_ec_key_refused(api: ResourceServer, issuer: FakeIssuer) -> None:
    rsa = JWK.generate("RSA", size=2048, alg="RS256", kid="k1")
    await refused(api, issuer.token(rsa))


async def test_token_from_a_key_the_issuer_does_not_publish(
    api: ResourceServer, issuer: FakeIssuer
) -> None:
    stranger = JWK.generate("EC", crv="P-256", alg="ES256", kid="not-published")
    assert "does not publish" in await refused(api, issuer.token(stranger))


async def test_embedded_jwk_header_refused(api: ResourceServer, issuer: FakeIssuer) -> None:
    attacker = JWK.generate("EC", crv="P-256", alg="ES256", kid="k1")
    token = unsigned(
        {"alg": "ES256", "typ": "at+jwt", "jwk": attacker.public().to_dict()}, issuer.claims()
    )
    await refused(api, token)


async def test_algorithm_outside_the_configured_list_refused(
    http: Any, clock: Any, issuer: FakeIssuer
) -> None:
    async with ResourceServer(
        issuer=ISSUER, audience=AUDIENCE, algorithms=["RS256"], http=http, clock=clock
    ) as api:
        assert "algorithm this API refuses" in await refused(api, issuer.token())


async def test_issuer_metadata_algorithm_list_is_the_allow_list(
    api: ResourceServer, issuer: FakeIssuer
) -> None:
    issuer.metadata_extra["id_token_signing_alg_values_supported"] = ["RS256", "HS256"]
    rsa = JWK.generate("RSA", size=2048, alg="RS256", kid="r1")
    issuer.published.append(rsa)
    await api.verify(Credentials(token=issuer.token(rsa)))
    assert "algorithm this API refuses" in await refused(api, issuer.token())


@pytest.mark.parametrize(
    "token",
    [
        "a.b.c",
        "e30.e30.",
        "x" * 20_000,
        "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.AAAA",
        "..",
        "a.b.c.d",
    ],
)
async def test_malformed_tokens_are_invalid_token(api: ResourceServer, token: str) -> None:
    with pytest.raises(ProtectError) as caught:
        await api.verify(Credentials(token=token))
    assert caught.value.status == 401


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.text(alphabet="ABCDEFGHIJabcdefghij0123456789-_.", max_size=300))
async def test_arbitrary_tokens_only_raise_protect_errors(api: ResourceServer, text: str) -> None:
    try:
        await api.verify(Credentials(token=text))
    except ProtectError as exc:
        assert exc.status == 401


def test_insufficient_scope_names_the_scope() -> None:
    with pytest.raises(InsufficientScope) as caught:
        require_scopes({"scope": "notes:read"}, ["notes:read", "notes:write"])
    assert caught.value.scopes == ("notes:read", "notes:write")
    assert "notes:read notes:write" in caught.value.description
    require_scopes({"scope": "notes:read notes:write"}, ["notes:write"])
    require_scopes({}, [])


async def test_bound_token_presented_as_bearer_refused(
    api: ResourceServer, issuer: FakeIssuer
) -> None:
    token = issuer.token(cnf={"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"})
    assert "bound to a DPoP key" in await refused(api, token)
