"""`ostiary jwt encode | decode | verify`, run in-process against the real library."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from cli_run import NOW, KeyFiles, Run, assert_one_line_error, write_key

from ostiary.jose import jws, jwt
from ostiary.jose.jwk import JWK, JWKSet

CLOCK = ("--now", str(NOW))


def signed(
    claims: Any, key: JWK, *, alg: str = "ES256", header: dict[str, Any] | None = None
) -> str:
    """A token whose payload is exactly `json.dumps(claims)`: claims jwt.encode would refuse."""
    return jws.sign(json.dumps(claims).encode(), key, alg=alg, headers=header)


def encode(ostiary: Run, key: KeyFiles, *args: str) -> str:
    result = ostiary("jwt", "encode", "--key", str(key.private), *CLOCK, *args)
    assert result.status == 0, result.err
    return result.out.strip()


# -- encode ---------------------------------------------------------------------------------


def test_encode_signs_claims_with_iat_and_exp(ostiary: Run, es256: KeyFiles) -> None:
    token = encode(ostiary, es256, "--claims", '{"sub": "u_123", "aud": "billing"}', "--exp", "15m")
    claims = jwt.decode(
        token, es256.key.public(), algorithms=["ES256"], audience="billing", now=NOW
    )
    assert claims == {"sub": "u_123", "aud": "billing", "iat": NOW, "exp": NOW + 900}
    assert jwt.unverified_header(token) == {"alg": "ES256", "typ": "JWT", "kid": "es-1"}


@pytest.mark.parametrize(
    ("exp", "seconds"),
    [
        ("90", 90),
        ("90s", 90),
        ("15m", 900),
        ("2h", 7200),
        ("1d", 86400),
        ("1w", 604800),
        ("1h30m", 5400),
        ("-5m", -300),
    ],
)
def test_encode_exp_durations(ostiary: Run, es256: KeyFiles, exp: str, seconds: int) -> None:
    token = encode(ostiary, es256, f"--exp={exp}")
    claims = json.loads(jws.verify(token, es256.key, algorithms=["ES256"]))
    assert claims == {"iat": NOW, "exp": NOW + seconds}


@pytest.mark.parametrize("exp", ["15x", "m15", "1.5h", "", "1h 30m"])
def test_encode_bad_duration_is_a_usage_error(ostiary: Run, es256: KeyFiles, exp: str) -> None:
    result = ostiary("jwt", "encode", "--key", str(es256.private), f"--exp={exp}")
    assert result.status == 2
    assert "is not a duration" in result.err


def test_encode_nbf_no_iat_and_headers(ostiary: Run, es256: KeyFiles) -> None:
    token = encode(
        ostiary,
        es256,
        "--nbf",
        "1m",
        "--exp",
        "1h",
        "--no-iat",
        "--header",
        "typ=at+jwt",
        "--header",
        "kid=override",
    )
    header = jwt.unverified_header(token)
    assert header["typ"] == "at+jwt"
    assert header["kid"] == "override"
    claims = jwt.decode(token, es256.key, algorithms=["ES256"], typ="at+jwt", now=NOW + 60)
    assert claims == {"nbf": NOW + 60, "exp": NOW + 3600}


def test_encode_keeps_iat_from_claims(ostiary: Run, es256: KeyFiles) -> None:
    token = encode(ostiary, es256, "--claims", '{"iat": 5}', "--exp", "1m")
    assert jwt.decode(token, es256.key, algorithms=["ES256"], now=NOW)["iat"] == 5


def test_encode_claims_from_stdin_and_file(ostiary: Run, es256: KeyFiles, tmp_path: Path) -> None:
    claims_file = tmp_path / "claims.json"
    claims_file.write_text('{"sub": "from-file"}', encoding="utf-8")
    by_file = encode(ostiary, es256, "--claims-file", str(claims_file), "--exp", "1m")
    result = ostiary(
        "jwt",
        "encode",
        "--key",
        str(es256.private),
        *CLOCK,
        "--exp",
        "1m",
        "-",
        stdin=b'{"sub": "from-stdin"}\n',
    )
    assert result.status == 0, result.err
    for token, sub in [(by_file, "from-file"), (result.out.strip(), "from-stdin")]:
        assert jwt.decode(token, es256.key, algorithms=["ES256"], now=NOW)["sub"] == sub


def test_encode_without_exp_warns_but_signs(ostiary: Run, es256: KeyFiles) -> None:
    result = ostiary("jwt", "encode", "--key", str(es256.private), *CLOCK)
    assert result.status == 0
    assert "no 'exp' claim" in result.err
    claims = jwt.decode(
        result.out.strip(), es256.key, algorithms=["ES256"], require_exp=False, now=NOW
    )
    assert claims == {"iat": NOW}


def test_encode_hs256_with_secret_from_env(ostiary: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = b"0123456789abcdef0123456789abcdef"
    monkeypatch.setenv("OSTIARY_TEST_SECRET", secret.decode())
    result = ostiary(
        "jwt",
        "encode",
        "--secret-env",
        "OSTIARY_TEST_SECRET",
        "--alg",
        "HS256",
        "--exp",
        "1m",
        *CLOCK,
    )
    assert result.status == 0, result.err
    claims = jwt.decode(result.out.strip(), secret, algorithms=["HS256"], now=NOW)
    assert claims == {"iat": NOW, "exp": NOW + 60}


def test_encode_hs256_with_secret_from_stdin_drops_one_newline(ostiary: Run) -> None:
    secret = b"0123456789abcdef0123456789abcdef"
    result = ostiary(
        "jwt",
        "encode",
        "--secret-stdin",
        "--alg",
        "HS256",
        "--exp",
        "1m",
        *CLOCK,
        stdin=secret + b"\n",
    )
    assert result.status == 0, result.err
    assert jwt.decode(result.out.strip(), secret, algorithms=["HS256"], now=NOW)


def test_encode_has_no_option_for_a_secret_on_the_command_line(ostiary: Run) -> None:
    result = ostiary("jwt", "encode", "--alg", "HS256", "--secret", "hunter2")
    assert result.status == 2
    assert "unrecognized arguments" in result.err or "ambiguous option" in result.err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--claims", "[1, 2]"], "must be a JSON object, not an array"),
        (["--claims", "{"], "the claims is not valid JSON"),
        (["--claims", '{"a": 1, "a": 2}'], "member 'a' appears twice"),
        (["--claims", '{"n": NaN}'], "NaN is not JSON"),
        (["--claims", '{"exp": "tomorrow"}'], "claim 'exp' must be a finite number"),
        (["--claims-file", "missing.json"], "cannot read the claims file 'missing.json'"),
        (["--header", "alg=none"], "set the algorithm with --alg"),
        (["--header", "novalue"], "write it as NAME=VALUE"),
        (["--alg", "none"], "cannot sign with 'none'"),
        (["--alg", "RS256"], "RS256 needs a RSA key"),
    ],
    ids=[
        "claims-array",
        "claims-broken",
        "claims-duplicate",
        "claims-nan",
        "exp-string",
        "claims-file-missing",
        "header-alg",
        "header-no-equals",
        "alg-none",
        "alg-other-family",
    ],
)
def test_encode_refuses_bad_input(
    ostiary: Run, es256: KeyFiles, args: list[str], message: str
) -> None:
    assert_one_line_error(ostiary("jwt", "encode", "--key", str(es256.private), *args), message)


def test_encode_with_a_public_key_is_refused(ostiary: Run, es256: KeyFiles) -> None:
    result = ostiary("jwt", "encode", "--key", str(es256.public), "--exp", "1m")
    assert_one_line_error(result, "needs a private key")


def test_encode_needs_alg_when_the_key_has_none(ostiary: Run, tmp_path: Path) -> None:
    files = write_key(tmp_path, "noalg", JWK.generate("EC", crv="P-256"))
    result = ostiary("jwt", "encode", "--key", str(files.private), "--exp", "1m")
    assert_one_line_error(result, "pass --alg")


def test_encode_short_secret_is_refused(ostiary: Run) -> None:
    result = ostiary("jwt", "encode", "--secret-stdin", "--alg", "HS256", stdin=b"short\n")
    assert_one_line_error(result, "HS256 needs a secret of at least 32 bytes")


def test_encode_secret_that_is_a_key_is_refused(ostiary: Run, es256: KeyFiles) -> None:
    pem = es256.key.to_pem()
    result = ostiary("jwt", "encode", "--secret-stdin", "--alg", "HS256", stdin=pem)
    assert_one_line_error(result, "hold an encoded key")


def test_encode_missing_secret_env(ostiary: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OSTIARY_TEST_UNSET", raising=False)
    result = ostiary("jwt", "encode", "--secret-env", "OSTIARY_TEST_UNSET", "--alg", "HS256")
    assert_one_line_error(result, "environment variable OSTIARY_TEST_UNSET is not set")


# -- decode ---------------------------------------------------------------------------------


def test_decode_without_key_shows_everything_and_says_unverified(
    ostiary: Run, es256: KeyFiles
) -> None:
    token = encode(ostiary, es256, "--claims", '{"sub": "u_123"}', "--exp", "5m")
    result = ostiary("jwt", "decode", token, *CLOCK)
    assert result.status == 0
    assert result.err == ""
    header_text, claims_text, signature_text = result.out.split("\n\n")
    assert json.loads(header_text.removeprefix("Header\n")) == jwt.unverified_header(token)
    assert '  "sub": "u_123",' in claims_text
    assert "2027-01-15 08:05:00 UTC, expires in 5 minutes" in claims_text
    assert "2027-01-15 08:00:00 UTC, issued just now" in claims_text
    assert signature_text.startswith("Signature NOT verified: no key given")


def test_decode_reads_token_from_stdin_with_bearer_prefix(ostiary: Run, es256: KeyFiles) -> None:
    token = encode(ostiary, es256, "--exp", "5m")
    result = ostiary("jwt", "decode", "-", *CLOCK, stdin=f"Bearer {token}\n".encode())
    assert result.status == 0, result.err
    assert "expires in 5 minutes" in result.out


@pytest.mark.parametrize(
    ("claim", "offset", "note"),
    [
        ("exp", -180, "expired 3 minutes ago"),
        ("exp", -1, "expired 1 second ago"),
        ("exp", 0, "expired just now"),
        ("exp", 1, "expires in 1 second"),
        ("exp", 300, "expires in 5 minutes"),
        ("exp", 2 * 86400 + 5, "expires in 2 days"),
        ("nbf", 300, "not valid before this: 5 minutes from now"),
        ("nbf", -3600, "valid since 1 hour ago"),
        ("iat", -7200, "issued 2 hours ago"),
        ("iat", 120, "issued in the future: 2 minutes from now"),
        ("auth_time", -400 * 86400, "1 year ago"),
    ],
)
def test_decode_describes_time_claims(
    ostiary: Run, es256: KeyFiles, claim: str, offset: int, note: str
) -> None:
    token = signed({claim: NOW + offset}, es256.key)
    result = ostiary("jwt", "decode", token, *CLOCK)
    assert result.status == 0
    line = next(line for line in result.out.splitlines() if f'"{claim}"' in line)
    assert line.endswith(f", {note}"), line


@pytest.mark.parametrize(
    ("value", "note"),
    [
        ('"tomorrow"', "not a NumericDate: a string"),
        ("true", "not a NumericDate: a boolean"),
        ("null", "not a NumericDate: null"),
        ("1e300", "outside the range of dates"),
        ("-1e20", "outside the range of dates"),
        ("99999999999999999999999999", "outside the range of dates"),
    ],
)
def test_decode_survives_odd_time_values(
    ostiary: Run, es256: KeyFiles, value: str, note: str
) -> None:
    token = jws.sign(f'{{"exp": {value}}}'.encode(), es256.key, alg="ES256")
    result = ostiary("jwt", "decode", token, *CLOCK)
    assert result.status == 0, result.err
    assert f"// {note}" in result.out


def test_decode_json_output(ostiary: Run, es256: KeyFiles) -> None:
    token = encode(ostiary, es256, "--claims", '{"sub": "u_1"}', "--exp", "5m")
    result = ostiary("jwt", "decode", "--json", "--key", str(es256.public), token, *CLOCK)
    assert result.status == 0
    out = json.loads(result.out)
    assert out["header"] == {"alg": "ES256", "typ": "JWT", "kid": "es-1"}
    assert out["claims"] == {"sub": "u_1", "iat": NOW, "exp": NOW + 300}
    assert out["signature"] == {"verified": True, "detail": "ES256 with key 'es-1'"}
    assert out["times"]["exp"] == {
        "utc": "2027-01-15T08:05:00Z",
        "seconds_from_now": 300,
        "note": "2027-01-15 08:05:00 UTC, expires in 5 minutes",
    }


@pytest.mark.parametrize("option", ["--key", "--jwks"])
def test_decode_with_the_right_key_says_verified(
    ostiary: Run, es256: KeyFiles, option: str
) -> None:
    token = encode(ostiary, es256, "--exp", "5m")
    result = ostiary("jwt", "decode", option, str(es256.public), token, *CLOCK)
    assert result.status == 0
    assert result.out.rstrip().endswith("Signature verified: ES256 with key 'es-1'")


def test_decode_expired_token_still_shows_and_verifies(ostiary: Run, es256: KeyFiles) -> None:
    token = encode(ostiary, es256, "--exp=-3m")
    result = ostiary("jwt", "decode", "--key", str(es256.public), token, *CLOCK)
    assert result.status == 0
    assert "expired 3 minutes ago" in result.out
    assert "Signature verified" in result.out


def test_decode_with_the_wrong_key_says_why_and_exits_1(
    ostiary: Run, es256: KeyFiles, other_es256: KeyFiles
) -> None:
    token = encode(ostiary, es256, "--exp", "5m")
    result = ostiary("jwt", "decode", "--key", str(other_es256.public), token, *CLOCK)
    assert result.status == 1
    assert '"exp"' in result.out  # still shown, as jwt.io does
    assert result.out.rstrip().endswith("Signature NOT verified: the signature is invalid")


def test_decode_tampered_token_is_not_verified(ostiary: Run, es256: KeyFiles) -> None:
    header, _, signature = encode(ostiary, es256, "--exp", "5m").split(".")
    forged = f"{header}.{jws.sign(b'{}', es256.key, alg='ES256').split('.')[1]}.{signature}"
    result = ostiary("jwt", "decode", "--key", str(es256.public), forged, *CLOCK)
    assert result.status == 1
    assert "Signature NOT verified: the signature is invalid" in result.out


def test_decode_hs256_token_against_ec_key_is_not_verified(ostiary: Run, es256: KeyFiles) -> None:
    token = jwt.encode({"exp": NOW + 60}, JWK.generate("oct", size=256), alg="HS256")
    result = ostiary("jwt", "decode", "--key", str(es256.public), token, *CLOCK)
    assert result.status == 1
    assert (
        "Signature NOT verified: algorithm 'HS256' is not in the allowed algorithms" in result.out
    )


def test_decode_unsigned_token_is_flagged(ostiary: Run) -> None:
    token = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9."  # {"alg":"none"}.{"sub":"admin"}.
    result = ostiary("jwt", "decode", token, *CLOCK)
    assert result.status == 0
    assert "Signature NOT verified: the token is unsigned (alg 'none')" in result.out


def test_decode_escapes_terminal_control_characters(ostiary: Run, es256: KeyFiles) -> None:
    hostile = {
        "name": "\x1b[2J\x1b]0;pwned\x07",
        "bidi": "\u202eevil",
        "c1": "\x9b31m",
        "ok": "Zoë",
    }
    token = signed(hostile, es256.key, header={"kid": "\x1b[31mred"})
    result = ostiary("jwt", "decode", token, *CLOCK)
    assert result.status == 0
    for raw in ("\x1b", "\x07", "\u202e", "\x9b"):
        assert raw not in result.out
    assert r'"name": "\u001b[2J\u001b]0;pwned\u0007"' in result.out
    assert r'"bidi": "\u202eevil"' in result.out
    assert '"ok": "Zoë"' in result.out
    json_result = ostiary("jwt", "decode", "--json", token, *CLOCK)
    assert "\x1b" not in json_result.out
    assert json.loads(json_result.out)["claims"] == hostile  # the escapes are JSON escapes


HOSTILE_TOKENS = {
    "empty": ("", "no token given"),
    "whitespace": ("  \n", "no token given"),
    "one-part": ("abc", "this one has 1"),
    "two-parts": ("a.b", "this one has 2"),
    "four-parts": ("a.b.c.d", "this one has 4"),
    "jwe": ("a.b.c.d.e", "encrypted JWT (JWE, 5 parts)"),
    "json": ('{"payload": "e30"}', "this is JSON, not a compact JWT"),
    "non-ascii": ("é.e30.x", "not ASCII"),
    "header-not-base64": ("a.e30.x", "protected header"),
    "header-padded": ("e30=.e30.x", "protected header"),
    "header-not-json": ("bm90IGpzb24.e30.x", "protected header"),
    "header-array": ("W10.e30.x", "protected header must be a JSON object"),
    "payload-not-base64": ("e30.!!.x", "the payload is not base64url"),
    "payload-padded": ("e30.e30=.x", "the payload is not base64url"),
    "payload-non-canonical": ("e30.e31.x", "not canonical base64url"),
    "payload-not-json": ("e30.bm90IGpzb24.x", "the claims set is not valid JSON"),
    "payload-not-utf8": ("e30.__8.x", "the claims set is not UTF-8"),
    "payload-array": ("e30.WzFd.x", "must be a JSON object, not an array"),
    "payload-duplicate": ("e30.eyJhIjoxLCJhIjoyfQ.x", "member 'a' appears twice"),
    "payload-nan": ("e30.eyJhIjpOYU59.x", "NaN is not JSON"),
    "payload-deep": ("e30." + "W" * 40000 + ".x", "the claims set"),
    "huge": ("e30." + "A" * 300_000 + ".x", "larger than"),
}


@pytest.mark.parametrize("name", list(HOSTILE_TOKENS))
def test_decode_refuses_malformed_tokens_in_one_line(ostiary: Run, name: str) -> None:
    token, message = HOSTILE_TOKENS[name]
    assert_one_line_error(ostiary("jwt", "decode", token), message)


def test_decode_refuses_a_deeply_nested_payload(ostiary: Run) -> None:
    payload = base64.urlsafe_b64encode(b"[" * 50_000 + b"]" * 50_000).decode().rstrip("=")
    assert_one_line_error(ostiary("jwt", "decode", f"e30.{payload}.x"), "nested too deeply")


# -- verify ---------------------------------------------------------------------------------


def verify(ostiary: Run, token: str, key: Path, *args: str) -> Any:
    return ostiary("jwt", "verify", token, "--key", str(key), "--alg", "ES256", *CLOCK, *args)


def test_verify_prints_claims_as_json(ostiary: Run, es256: KeyFiles) -> None:
    token = encode(
        ostiary, es256, "--claims", '{"aud": "billing", "iss": "https://i"}', "--exp", "5m"
    )
    result = verify(ostiary, token, es256.public, "--audience", "billing", "--issuer", "https://i")
    assert result.status == 0, result.err
    assert result.err == ""
    assert json.loads(result.out) == {
        "aud": "billing",
        "iss": "https://i",
        "iat": NOW,
        "exp": NOW + 300,
    }


@pytest.mark.parametrize(
    ("claims", "args", "message"),
    [
        ({"exp": NOW}, [], "the token has expired"),
        ({"exp": NOW + 60, "nbf": NOW + 30}, [], "not valid yet"),
        ({"exp": NOW + 60}, ["--audience", "billing"], "the token has no 'aud' claim"),
        (
            {"exp": NOW + 60, "aud": "payroll"},
            ["--audience", "billing"],
            "audience is not accepted",
        ),
        ({"exp": NOW + 60, "aud": "billing"}, [], "pass --audience"),
        ({"exp": NOW + 60, "iss": "https://evil"}, ["--issuer", "https://i"], "issuer"),
        ({"exp": NOW + 60, "sub": "a"}, ["--subject", "b"], "subject"),
        ({"exp": NOW + 60}, ["--require", "jti"], "the token has no 'jti' claim"),
        ({"exp": NOW + 60}, ["--typ", "at+jwt"], "type is 'JWT'"),
        ({}, [], "the token has no 'exp' claim"),
    ],
    ids=[
        "expired",
        "not-yet-valid",
        "aud-missing",
        "aud-wrong",
        "aud-unexpected",
        "iss-wrong",
        "sub-wrong",
        "jti-missing",
        "typ-wrong",
        "exp-missing",
    ],
)
def test_verify_rejects_with_the_reason(
    ostiary: Run, es256: KeyFiles, claims: dict[str, Any], args: list[str], message: str
) -> None:
    token = jwt.encode(claims, es256.key, alg="ES256")
    result = verify(ostiary, token, es256.public, *args)
    assert_one_line_error(result, "ostiary: error: token rejected: ")
    assert message in result.err


@pytest.mark.parametrize(
    ("leeway", "ok"), [("0", False), ("10", False), ("10.5", True), ("30", True)]
)
def test_verify_leeway_boundary(ostiary: Run, es256: KeyFiles, leeway: str, ok: bool) -> None:
    token = jwt.encode({"exp": NOW - 10}, es256.key, alg="ES256")
    result = verify(ostiary, token, es256.public, "--leeway", leeway)
    assert (result.status == 0) is ok, result.err


def test_verify_with_the_wrong_key(ostiary: Run, es256: KeyFiles, other_es256: KeyFiles) -> None:
    token = encode(ostiary, es256, "--exp", "5m")
    assert_one_line_error(verify(ostiary, token, other_es256.public), "the signature is invalid")


@pytest.mark.parametrize(
    ("algs", "message"),
    [(["--alg", "RS256"], "'ES256' is not in the allowed"), (["--alg", ","], "--alg needs")],
    ids=["alg-not-allowed", "alg-empty"],
)
def test_verify_alg_allow_list(
    ostiary: Run, es256: KeyFiles, algs: list[str], message: str
) -> None:
    token = encode(ostiary, es256, "--exp", "5m")
    result = ostiary("jwt", "verify", token, "--key", str(es256.public), *algs, *CLOCK)
    assert_one_line_error(result, message)


def test_verify_needs_an_alg_and_a_key(ostiary: Run, es256: KeyFiles) -> None:
    no_alg = ostiary("jwt", "verify", "a.b.c", "--key", str(es256.public))
    no_key = ostiary("jwt", "verify", "a.b.c", "--alg", "ES256")
    assert (no_alg.status, no_key.status) == (2, 2)
    assert "--alg" in no_alg.err
    assert "--key" in no_key.err


def test_verify_comma_separated_algs_and_jwks_lookup_by_kid(
    ostiary: Run, es256: KeyFiles, tmp_path: Path
) -> None:
    rotated = JWK.generate("EC", crv="P-256", alg="ES256", kid="es-2")
    jwks = tmp_path / "jwks.json"
    jwks.write_text(
        json.dumps(JWKSet([rotated.public(), es256.key.public()]).to_dict()), encoding="utf-8"
    )
    for key in (es256.key, rotated):
        token = jwt.encode({"exp": NOW + 60, "kid_was": key.kid}, key, alg="ES256")
        result = ostiary(
            "jwt", "verify", token, "--jwks", str(jwks), "--alg", "RS256,ES256", *CLOCK
        )
        assert result.status == 0, result.err
        assert json.loads(result.out)["kid_was"] == key.kid


def test_verify_unknown_kid_in_jwks(ostiary: Run, es256: KeyFiles, tmp_path: Path) -> None:
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [es256.key.public().to_dict()]}), encoding="utf-8")
    token = jwt.encode({"exp": NOW + 60}, JWK.generate("EC", alg="ES256", kid="x"), alg="ES256")
    result = ostiary("jwt", "verify", token, "--jwks", str(jwks), "--alg", "ES256", *CLOCK)
    assert_one_line_error(result, "no key in the set")


def test_verify_token_from_stdin_with_hs256_secret_from_env(
    ostiary: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = b"a-secret-that-is-long-enough-32b"
    monkeypatch.setenv("OSTIARY_TEST_SECRET", secret.decode())
    token = jwt.encode({"exp": NOW + 60}, secret, alg="HS256")
    result = ostiary(
        "jwt",
        "verify",
        "-",
        "--secret-env",
        "OSTIARY_TEST_SECRET",
        "--alg",
        "HS256",
        *CLOCK,
        stdin=token.encode() + b"\n",
    )
    assert result.status == 0, result.err


def test_stdin_cannot_carry_both_token_and_secret(ostiary: Run) -> None:
    result = ostiary("jwt", "verify", "-", "--secret-stdin", "--alg", "HS256", stdin=b"x")
    assert_one_line_error(result, "stdin can carry the token or the key, not both")


def test_verify_with_pem_keys(ostiary: Run, rsa_pem: tuple[Path, Path]) -> None:
    private, public = rsa_pem
    encoded = ostiary(
        "jwt", "encode", "--key", str(private), "--alg", "PS256", "--exp", "1m", *CLOCK
    )
    assert encoded.status == 0, encoded.err
    token = encoded.out.strip()
    result = ostiary("jwt", "verify", token, "--key", str(public), "--alg", "PS256", *CLOCK)
    assert result.status == 0, result.err
    confused = ostiary("jwt", "verify", token, "--key", str(public), "--alg", "HS256", *CLOCK)
    assert_one_line_error(confused, "'PS256' is not in the allowed algorithms")


@pytest.fixture(scope="module")
def rsa_pem(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("rsa")
    key = JWK.generate("RSA", size=2048)
    (folder / "rsa.pem").write_bytes(key.to_pem(private=True))
    (folder / "rsa.pub.pem").write_bytes(key.to_pem())
    return folder / "rsa.pem", folder / "rsa.pub.pem"


# -- key files ------------------------------------------------------------------------------


KEY_FILE_PROBLEMS = {
    "missing": (None, "cannot read the key file"),
    "directory": (b"<dir>", "cannot read the key file"),
    "broken-json": (b'{"kty": ', "is not valid JSON"),
    "duplicate-member": (b'{"kty": "EC", "kty": "RSA"}', "appears twice"),
    "not-a-jwk": (b'{"hello": "world"}', "'kty' is missing"),
    "bad-jwk": (b'{"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}', "EC coordinates"),
    "jwks-not-array": (b'{"keys": 3}', "'keys' array"),
    "garbage": (b"hello world\n", "not a JWK, a JWK Set, or a PEM or DER key"),
    "broken-pem": (b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "PEM"),
    "openssh": (b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5 me@host\n", "OpenSSH key"),
    "binary": (bytes(range(256)), "not a JWK"),
}


@pytest.mark.parametrize("name", list(KEY_FILE_PROBLEMS))
def test_bad_key_files_give_one_line(ostiary: Run, tmp_path: Path, name: str) -> None:
    content, message = KEY_FILE_PROBLEMS[name]
    path = tmp_path / "key"
    if content == b"<dir>":
        path.mkdir()
    elif content is not None:
        path.write_bytes(content)
    result = ostiary("jwt", "verify", "a.b.c", "--key", str(path), "--alg", "ES256")
    assert_one_line_error(result, message)
