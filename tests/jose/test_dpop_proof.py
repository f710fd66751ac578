"""`ostiary.jose.dpop`: every RFC 9449 §4.3 check of a DPoP proof, each tried with what an
attacker or a broken client would send. The token endpoint and the resource server both
verify their proofs here (tests/server/test_dpop_route.py checks they refuse alike)."""

from __future__ import annotations

import base64
import json
import string
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ostiary.jose import dpop, jws
from ostiary.jose.jwk import JWK

NOW = 1_800_000_000
URL = "https://api.example/notes"
TOKEN = "an-access-token.for.tests"


@pytest.fixture(scope="module")
def key() -> JWK:
    return JWK.generate("EC", crv="P-256", alg="ES256")


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_proof(
    key: JWK, *, header: dict[str, Any] | None = None, alg: str = "ES256", **claims: Any
) -> str:
    """A proof for GET `URL` with `TOKEN`; a claim given as None is left out."""
    body = {
        "htm": "GET",
        "htu": URL,
        "iat": NOW,
        "jti": "jti-1",
        "ath": dpop.access_token_hash(TOKEN),
        **claims,
    }
    body = {name: value for name, value in body.items() if value is not None}
    headers = {"typ": "dpop+jwt", **(header or {})}
    if "jwk" not in headers:
        headers["jwk"] = key.public().to_dict()
    headers = {name: value for name, value in headers.items() if value is not None}
    return jws.sign(json.dumps(body), key, alg=alg, headers={"alg": alg, **headers})


def verify(proof: str, **options: Any) -> dpop.DPoPProof:
    expected: dict[str, Any] = {"method": "GET", "url": URL, "now": NOW, "access_token": TOKEN}
    return dpop.verify_proof(proof, **{**expected, **options})


def test_good_proof_gives_its_key_jti_and_nonce(key: JWK) -> None:
    found = verify(make_proof(key, nonce="n-1"), jkt=key.thumbprint())
    assert (found.jkt, found.jti, found.iat, found.nonce) == (key.thumbprint(), "jti-1", NOW, "n-1")


def test_token_endpoint_proof_needs_no_ath(key: JWK) -> None:
    """§4.3: `ath` is checked only when an access token comes with the proof."""
    assert verify(make_proof(key, ath=None), access_token=None).jkt == key.thumbprint()


@pytest.mark.parametrize(
    ("claims", "fragment"),
    [
        pytest.param({"htm": "POST"}, "htm", id="wrong-htm"),
        pytest.param({"htm": "get"}, "htm", id="htm-in-lowercase"),
        pytest.param({"htm": None}, "htm", id="no-htm"),
        pytest.param({"htu": "https://api.example/other"}, "htu", id="wrong-path"),
        pytest.param({"htu": "https://evil.example/notes"}, "htu", id="other-host"),
        pytest.param({"htu": "http://api.example/notes"}, "htu", id="other-scheme"),
        pytest.param({"htu": "https://api.example:8443/notes"}, "htu", id="other-port"),
        pytest.param({"htu": "https://api.example:abc/notes"}, "htu", id="port-not-a-number"),
        pytest.param({"htu": "https://api.example:99999/notes"}, "htu", id="port-out-of-range"),
        pytest.param({"htu": "https://[::1/notes"}, "htu", id="broken-ipv6-host"),
        pytest.param({"htu": "https://user:pw@api.example/notes"}, "htu", id="userinfo"),
        pytest.param({"htu": ["https://api.example/notes"]}, "htu", id="htu-not-a-string"),
        pytest.param({"htu": None}, "htu", id="no-htu"),
        pytest.param({"iat": NOW - 61}, "iat", id="iat-stale"),
        pytest.param({"iat": NOW + 61}, "iat", id="iat-in-the-future"),
        pytest.param({"iat": str(NOW)}, "malformed", id="iat-a-string"),
        pytest.param({"iat": NOW + 0.5}, "iat", id="iat-not-an-integer"),
        pytest.param({"iat": True}, "malformed", id="iat-a-boolean"),
        pytest.param({"iat": None}, "iat", id="no-iat"),
        pytest.param({"jti": None}, "jti", id="no-jti"),
        pytest.param({"jti": ""}, "jti", id="empty-jti"),
        pytest.param({"jti": "j" * 257}, "jti", id="jti-too-long"),
        pytest.param({"jti": 7}, "malformed", id="jti-a-number"),
        pytest.param({"ath": None}, "ath", id="no-ath"),
        pytest.param({"ath": dpop.access_token_hash("another")}, "ath", id="ath-of-another"),
        pytest.param({"ath": "é" * 43}, "ath", id="ath-not-ascii"),
        pytest.param({"ath": 1}, "ath", id="ath-a-number"),
        pytest.param({"nonce": 5}, "nonce", id="nonce-a-number"),
        pytest.param({"nonce": "n" * 257}, "nonce", id="nonce-too-long"),
        pytest.param({"exp": NOW - 61}, "malformed", id="expired"),
        pytest.param({"nbf": NOW + 61}, "iat", id="not-yet-valid"),
    ],
)
def test_bad_claims_refused(key: JWK, claims: dict[str, Any], fragment: str) -> None:
    with pytest.raises(dpop.InvalidProof, match=fragment):
        verify(make_proof(key, **claims))


@pytest.mark.parametrize(("delta", "ok"), [(-61, False), (-60, True), (60, True), (61, False)])
def test_iat_window_boundary(key: JWK, delta: int, ok: bool) -> None:
    proof = make_proof(key, iat=NOW + delta)
    if ok:
        assert verify(proof).iat == NOW + delta
    else:
        with pytest.raises(dpop.InvalidProof, match="iat"):
            verify(proof)


def test_iat_window_on_a_fractional_clock(key: JWK) -> None:
    """A resource server's clock has fractions: 60.5 seconds late is too late."""
    with pytest.raises(dpop.InvalidProof, match="iat"):
        verify(make_proof(key, iat=NOW - 60), now=NOW + 0.5)


def test_signed_by_another_key_than_the_tokens_refused(key: JWK) -> None:
    thief = JWK.generate("EC", crv="P-256", alg="ES256")
    with pytest.raises(dpop.InvalidProof, match="not signed by the key"):
        verify(make_proof(thief), jkt=key.thumbprint())
    with pytest.raises(dpop.InvalidProof, match="not signed by the key"):
        verify(make_proof(key), jkt="ü" * 43)  # a cnf.jkt that no thumbprint can be


def test_private_key_in_the_jwk_refused(key: JWK) -> None:
    with pytest.raises(dpop.InvalidProof, match="malformed"):
        verify(make_proof(key, header={"jwk": key.to_dict(private=True)}))


def test_private_member_beside_a_public_key_refused() -> None:
    """§4.3: no private key in the jwk, not even a member the key would load without
    (the full table is in test_embedded_key.py, where the rule lives)."""
    rsa = JWK.generate("RSA", size=2048, alg="RS256")
    jwk = {**rsa.public().to_dict(), "oth": []}
    with pytest.raises(dpop.InvalidProof, match="malformed"):
        verify(make_proof(rsa, alg="RS256", header={"jwk": jwk}))


def test_symmetric_key_and_mac_refused() -> None:
    secret = JWK.generate("oct", size=256, alg="HS256")
    header = {"typ": "dpop+jwt", "jwk": secret.to_dict(private=True)}
    with pytest.raises(dpop.InvalidProof, match="malformed"):
        verify(make_proof(secret, alg="HS256", header=header))
    assert not [a for a in dpop.DPOP_ALGORITHMS if a.startswith("HS") or a == "none"]


def test_alg_none_refused(key: JWK) -> None:
    header = {"alg": "none", "typ": "dpop+jwt", "jwk": key.public().to_dict()}
    body = {"htm": "GET", "htu": URL, "iat": NOW, "jti": "j", "ath": dpop.access_token_hash(TOKEN)}
    token = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(body).encode())}."
    with pytest.raises(dpop.InvalidProof, match="malformed"):
        verify(token)


@pytest.mark.parametrize(
    "header",
    [
        pytest.param({"typ": "JWT"}, id="typ-jwt"),
        pytest.param({"typ": "at+jwt"}, id="typ-access-token"),
        pytest.param({"typ": None}, id="no-typ"),
        pytest.param({"jwk": None}, id="no-jwk"),
        pytest.param({"jku": "https://evil.example/jwks"}, id="jku"),
    ],
)
def test_bad_headers_refused(key: JWK, header: dict[str, Any]) -> None:
    with pytest.raises(dpop.InvalidProof, match="malformed"):
        verify(make_proof(key, header=header))


def test_key_of_another_algorithm_refused(key: JWK) -> None:
    rsa = JWK.generate("RSA", size=2048, alg="RS256")
    with pytest.raises(dpop.InvalidProof, match="malformed"):
        verify(make_proof(rsa, alg="RS256", header={"jwk": key.public().to_dict()}))


@pytest.mark.parametrize(
    "proof",
    [
        pytest.param("", id="empty"),
        pytest.param("not-a-jwt", id="garbage"),
        pytest.param("a.b.c", id="three-garbage-parts"),
        pytest.param("e30.e30.e30", id="empty-objects"),
        pytest.param("x" * (dpop.MAX_PROOF_SIZE + 1), id="oversized"),
    ],
)
def test_malformed_and_oversized_refused(proof: str) -> None:
    with pytest.raises(dpop.InvalidProof, match="malformed"):
        verify(proof)


def test_oversized_but_well_formed_refused(key: JWK) -> None:
    with pytest.raises(dpop.InvalidProof, match="malformed"):
        verify(make_proof(key, padding="p" * dpop.MAX_PROOF_SIZE))


def test_replay_key_names_the_key_and_jti(key: JWK) -> None:
    """§11.1: a cache remembers a proof by its key and jti, as long as its iat can pass."""
    first, again = verify(make_proof(key)), verify(make_proof(key), now=NOW + 30)
    assert first.replay_key == again.replay_key
    assert first.replay_key != verify(make_proof(key, jti="jti-2")).replay_key
    other = JWK.generate("EC", crv="P-256", alg="ES256")
    assert first.replay_key != verify(make_proof(other)).replay_key
    assert first.replay_until == NOW + dpop.IAT_WINDOW + 1
    lone = verify(make_proof(key, jti="\ud800"))  # JSON may carry a lone surrogate
    assert lone.replay_key != first.replay_key


@pytest.mark.parametrize(
    ("htu", "url", "same"),
    [
        ("https://api.example/notes", "https://api.example/notes", True),
        ("HTTPS://API.Example:443/notes", "https://api.example/notes", True),
        ("https://api.example/notes?page=2#top", "https://api.example/notes", True),
        ("https://api.example/notes", "https://api.example/notes?page=2", True),
        ("http://a.example:80", "http://a.example/", True),
        ("http://[::1]:8080/p", "http://[::1]:8080/p", True),
        ("https://api.example/Notes", "https://api.example/notes", False),
        ("https://api.example:8443/notes", "https://api.example/notes", False),
        ("https://user@api.example/notes", "https://api.example/notes", False),
        ("https://api.example:bad/notes", "https://api.example/notes", False),
        ("https://api.example/notes", "https://api.example:bad/notes", False),
        ("/notes", "https://api.example/notes", False),
    ],
)
def test_htu_compared_without_query_fragment_case_or_default_port(
    htu: str, url: str, same: bool
) -> None:
    assert dpop.is_request_url(htu, url) is same


def test_normalize_htu() -> None:
    assert dpop.normalize_htu("http://a.example:80/p#f") == "http://a.example/p"
    assert dpop.normalize_htu("HTTPS://u:pw@A.example:8443?q") == "https://a.example:8443/"
    with pytest.raises(ValueError):
        dpop.normalize_htu("https://a.example:99999/p")


def test_ath_is_the_rfc_9449_example() -> None:
    """RFC 9449 §7.1's example token and its `ath`."""
    assert (
        dpop.access_token_hash("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU")
        == "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
    )


# Any JSON value in any claim the checks read: the answer is a proof or `InvalidProof`,
# never another exception (a TypeError from compare_digest, a ValueError from urlsplit).
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
    | st.sampled_from([URL, "https://[::1", "https://a.example:x/", "\ud800", "é"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=5,
)
claim_names = st.sampled_from(["htm", "htu", "iat", "jti", "ath", "nonce", "exp", "nbf"])


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(changes=st.dictionaries(claim_names, json_values, max_size=4))
def test_any_claim_values_give_a_proof_or_invalid_proof(key: JWK, changes: dict[str, Any]) -> None:
    try:
        found = verify(make_proof(key, **changes), jkt=key.thumbprint())
    except dpop.InvalidProof:
        return
    assert found.jkt == key.thumbprint()


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(proof=st.text(alphabet=string.ascii_letters + string.digits + "-_.", max_size=300))
def test_any_text_is_invalid_proof(proof: str) -> None:
    with pytest.raises(dpop.InvalidProof):
        verify(proof)
