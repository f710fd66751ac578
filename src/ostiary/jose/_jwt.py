"""JSON Web Tokens (RFC 7519) with the RFC 8725 best current practices as defaults."""

from __future__ import annotations

import math
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Final, TypeGuard

from ._b64 import b64decode, b64encode
from ._errors import (
    ExpiredToken,
    ImmatureToken,
    InvalidAudience,
    InvalidClaims,
    InvalidHeader,
    InvalidIssuer,
    InvalidType,
    MalformedToken,
    MissingClaim,
)
from ._header import check_crit
from ._json import dumps, loads_claims, loads_object
from ._jwa import SIGNATURE_ALGORITHMS
from ._jwk import JWK, JWKSet, KeyInput, coerce_keys
from ._jws import (
    _HEADER_CACHE,
    _UNDERSTOOD,
    _algorithm,
    _signing_algorithm,
    _signing_key,
    build_protected,
    check_algorithms,
    parse_protected,
    split_compact,
    split_token,
    verify_signature,
)
from ._jws import unverified_header as _unverified_header
from ._limits import MAX_TOKEN_SIZE

_TIME_CLAIMS: Final = ("exp", "nbf", "iat")
# Encoded protected headers for the common case (no extra headers), keyed by (alg, kid).
_HEADER_TEXT: dict[tuple[str, str | None], str] = {}


def encode(
    claims: Mapping[str, Any],
    key: KeyInput,
    *,
    alg: str,
    headers: Mapping[str, Any] | None = None,
    encrypt_key: KeyInput | None = None,
    encrypt_alg: str | None = None,
    enc: str | None = None,
) -> str:
    """Sign claims into a compact JWT (`typ: JWT` unless `headers` says otherwise).

    With `encrypt_key`, `encrypt_alg` and `enc` the signed JWT is then encrypted to that key
    as a nested JWT (RFC 7519 §5.2, `cty: JWT`). `datetime` values of exp/nbf/iat become
    NumericDate seconds.
    """
    if not isinstance(claims, Mapping):
        raise TypeError("claims must be a mapping")
    for name in _TIME_CLAIMS:
        value = claims.get(name)
        if value is not None and type(value) is not int:
            claims = {**claims, name: _numeric_date(name, value)}
    impl = _signing_algorithm(alg)
    jwk = key if type(key) is JWK else None
    if (
        jwk is None
        or headers is not None
        or jwk.kty != impl.kty
        or (jwk.alg is not None and jwk.alg != alg)
        or not jwk.allows("sign")
    ):
        jwk = _signing_key(key, impl)
    if headers is None:
        cache_key = (alg, jwk.kid)
        protected = _HEADER_TEXT.get(cache_key)
        if protected is None:
            protected = b64encode(dumps(build_protected(alg, jwk, None, {"typ": "JWT"})))
            if len(_HEADER_TEXT) < 256:
                _HEADER_TEXT[cache_key] = protected
    else:
        protected = b64encode(dumps(build_protected(alg, jwk, headers, {"typ": "JWT"})))
    signing_input = f"{protected}.{b64encode(dumps(claims))}"
    signature = impl.sign(jwk, signing_input.encode("ascii"))
    token = f"{signing_input}.{b64encode(signature)}"
    if encrypt_key is None:
        if encrypt_alg is not None or enc is not None:
            raise ValueError("encrypt_alg and enc need encrypt_key")
        return token
    if encrypt_alg is None or enc is None:
        raise ValueError("a nested JWT needs encrypt_alg= and enc=")
    from ._jwe import encrypt as jwe_encrypt  # noqa: PLC0415 - JWE loads only when used

    return jwe_encrypt(
        token.encode("ascii"), encrypt_key, alg=encrypt_alg, enc=enc, headers={"cty": "JWT"}
    )


def _numeric_date(name: str, value: object) -> int | float:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"claim {name!r}: use a timezone-aware datetime")
        return int(value.timestamp())
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"claim {name!r} must be a finite number of seconds or a datetime")
    return value


def decode(
    token: str | bytes,
    key: KeyInput,
    *,
    algorithms: Sequence[str],
    audience: str | Collection[str] | None = None,
    issuer: str | Collection[str] | None = None,
    subject: str | None = None,
    typ: str | None = None,
    leeway: float = 0,
    required: Iterable[str] = (),
    require_exp: bool = True,
    max_age: float | None = None,
    now: float | None = None,
    max_size: int = MAX_TOKEN_SIZE,
    decrypt_key: KeyInput | None = None,
    decrypt_algorithms: Sequence[str] | None = None,
    encryptions: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Verify a JWT's signature and claims; return the claims.

    `exp` is required unless `require_exp=False`. Passing `audience`, `issuer`, `subject` or
    `typ` makes that check mandatory. A nested (signed, then encrypted) JWT needs
    `decrypt_key`, `decrypt_algorithms` and `encryptions`.
    """
    if not algorithms or isinstance(algorithms, str | bytes):
        check_algorithms(algorithms)
    if leeway < 0:
        raise ValueError("leeway must not be negative")
    if type(token) is str and len(token) <= max_size and token.isascii():
        pieces = token.split(".")  # the common case, without a call
    else:
        pieces = split_token(token, max_size)
    if len(pieces) == 5:
        pieces = _decrypt_nested(token, max_size, decrypt_key, decrypt_algorithms, encryptions)
    elif len(pieces) != 3:
        if pieces[0].lstrip().startswith("{"):
            raise MalformedToken("a JWT is compact; JSON serializations are not JWTs")
        raise MalformedToken("a JWT has 3 parts (signed) or 5 parts (nested, encrypted)")
    elif decrypt_key is not None:
        raise InvalidHeader("an encrypted JWT was expected, but this one is only signed")
    protected, encoded, sig_text = pieces
    header = _HEADER_CACHE.get(protected) or parse_protected(protected)
    alg = header["alg"]
    impl = SIGNATURE_ALGORITHMS.get(alg) if alg in algorithms else None
    if impl is None:
        impl = _algorithm(alg, algorithms)  # raises the precise error
    if "b64" in header:
        raise InvalidHeader("a JWT must not use the 'b64' header (RFC 7797 §7)")
    signature = b64decode(sig_text, "signature")
    keys = key if type(key) is JWK else coerce_keys(key)
    verify_signature(impl, keys, header, f"{protected}.{encoded}".encode("ascii"), signature)
    if typ is not None:
        _check_typ(header.get("typ"), typ)
    claims = loads_claims(b64decode(encoded, "payload"), "claims set")
    _validate(claims, audience, issuer, subject, leeway, required, require_exp, max_age, now)
    return claims


def _decrypt_nested(
    token: str | bytes,
    max_size: int,
    decrypt_key: object,
    decrypt_algorithms: Sequence[str] | None,
    encryptions: Sequence[str] | None,
) -> list[str]:
    if decrypt_key is None or not decrypt_algorithms or not encryptions:
        raise MalformedToken(
            "this JWT is encrypted: pass decrypt_key=, decrypt_algorithms= and encryptions="
        )
    from ._jwe import decrypt_compact  # noqa: PLC0415 - JWE loads only when used

    keys: JWK | JWKSet = coerce_keys(decrypt_key)
    plaintext, header = decrypt_compact(
        token, keys, algorithms=decrypt_algorithms, encryptions=encryptions, max_size=max_size
    )
    cty = header.get("cty")
    # RFC 7519 §5.2: cty "JWT" marks a nested JWT; an unsigned encrypted JWT is not accepted.
    if not isinstance(cty, str) or cty.upper() not in ("JWT", "APPLICATION/JWT"):
        raise InvalidHeader("an encrypted JWT must contain a signed JWT (cty: JWT)")
    return split_compact(plaintext, max_size)


def _normalize_typ(value: str) -> str:
    # RFC 7515 §4.1.9: media types compare case-insensitively, "application/" may be omitted.
    value = value.lower()
    return value[12:] if value.startswith("application/") and "/" not in value[12:] else value


def _check_typ(actual: object, expected: str) -> None:
    if not isinstance(actual, str):
        raise InvalidType(f"the token has no 'typ' header; expected {expected!r}")
    if _normalize_typ(actual) != _normalize_typ(expected):
        raise InvalidType(f"the token's type is {actual!r}; expected {expected!r}")


def _bad_time(name: str, value: object) -> InvalidClaims:
    if value is None:
        return InvalidClaims(f"claim {name!r} must be a number, not null", claim=name)
    return InvalidClaims(f"claim {name!r} must be a finite NumericDate", claim=name)


def _is_numeric_date(value: object) -> TypeGuard[int | float]:
    kind = type(value)
    return kind is int or (kind is float and math.isfinite(value))  # type: ignore[arg-type]


def validate_claims(
    claims: Mapping[str, Any],
    *,
    audience: str | Collection[str] | None = None,
    issuer: str | Collection[str] | None = None,
    subject: str | None = None,
    leeway: float = 0,
    required: Iterable[str] = (),
    require_exp: bool = True,
    max_age: float | None = None,
    now: float | None = None,
) -> None:
    """Check a claims set's times and the expectations passed; raise `InvalidClaims`."""
    _validate(claims, audience, issuer, subject, leeway, required, require_exp, max_age, now)


def _validate(  # noqa: PLR0917 - positional on purpose: it runs on every request
    claims: Mapping[str, Any],
    audience: str | Collection[str] | None,
    issuer: str | Collection[str] | None,
    subject: str | None,
    leeway: float,
    required: Iterable[str],
    require_exp: bool,
    max_age: float | None,
    now: float | None,
) -> None:
    # One flat function: this runs on every request an API serves.
    if now is None:
        now = time.time()
    for name in required:
        if claims.get(name) is None:
            raise MissingClaim(f"the token has no {name!r} claim", claim=name)
    get = claims.get
    exp = get("exp")
    if exp is not None or "exp" in claims:
        if type(exp) is not int and not _is_numeric_date(exp):
            raise _bad_time("exp", exp)
        if now - leeway >= exp:  # RFC 7519 §4.1.4: "on or after" exp is expired
            raise ExpiredToken("the token has expired", claim="exp")
    elif require_exp:
        raise MissingClaim("the token has no 'exp' claim", claim="exp")
    nbf = get("nbf")
    if nbf is not None or "nbf" in claims:
        if type(nbf) is not int and not _is_numeric_date(nbf):
            raise _bad_time("nbf", nbf)
        if now + leeway < nbf:
            raise ImmatureToken("the token is not valid yet (nbf)", claim="nbf")
    iat = get("iat")
    if iat is not None or "iat" in claims:
        if type(iat) is not int and not _is_numeric_date(iat):
            raise _bad_time("iat", iat)
        if iat > now + leeway:
            raise ImmatureToken("the token was issued in the future (iat)", claim="iat")
    if max_age is not None:
        if iat is None:
            raise MissingClaim("max_age needs the 'iat' claim", claim="iat")
        if now - leeway > iat + max_age:
            raise ExpiredToken("the token is older than max_age", claim="iat")
    aud = get("aud")
    if type(aud) is str and type(audience) is str:
        if aud != audience:
            raise InvalidAudience("the token's audience is not accepted", claim="aud")
    elif aud is not None or audience is not None or "aud" in claims:
        _check_audience(claims, audience)
    iss = get("iss")
    if iss is not None and type(iss) is not str:
        raise InvalidIssuer("claim 'iss' must be a string", claim="iss")
    if issuer is not None:
        if iss is None:
            raise MissingClaim("the token has no 'iss' claim", claim="iss")
        if iss != issuer and (isinstance(issuer, str) or iss not in issuer):
            raise InvalidIssuer("the token's issuer is not accepted", claim="iss")
    sub = get("sub")
    if sub is not None and type(sub) is not str:
        raise InvalidClaims("claim 'sub' must be a string", claim="sub")
    if subject is not None and sub != subject:
        if sub is None:
            raise MissingClaim("the token has no 'sub' claim", claim="sub")
        raise InvalidClaims("the token's subject is not the expected one", claim="sub")
    jti = get("jti")
    if jti is not None and type(jti) is not str:
        raise InvalidClaims("claim 'jti' must be a string", claim="jti")


def _check_audience(claims: Mapping[str, Any], audience: str | Collection[str] | None) -> None:
    if "aud" not in claims:
        if audience is not None:
            raise MissingClaim("the token has no 'aud' claim", claim="aud")
        return
    aud = claims["aud"]
    if isinstance(aud, str):
        values: Collection[str] = (aud,)
    elif isinstance(aud, list) and aud and all(isinstance(v, str) for v in aud):
        values = aud
    else:
        raise InvalidAudience("claim 'aud' must be a string or a non-empty array of strings")
    if audience is None:
        # RFC 7519 §4.1.3: a recipient that does not identify with `aud` must reject.
        raise InvalidAudience(
            "the token names an audience; pass audience= to accept it", claim="aud"
        )
    accepted = (audience,) if isinstance(audience, str) else audience
    if not any(value in accepted for value in values):
        raise InvalidAudience("the token's audience is not accepted", claim="aud")


# A proof-of-possession JWT is small: a header with one public key, and a few claims.
MAX_EMBEDDED_KEY_TOKEN_SIZE: Final = 16 * 1024
# A client signs every proof with the same key, so the same protected header comes back each
# time: its checked header and imported key are kept (importing an EC key validates the point,
# which costs as much as the signature check).
_EMBEDDED_HEADERS: dict[str, tuple[dict[str, Any], JWK]] = {}
_EMBEDDED_HEADERS_MAX: Final = 1024
# Members only a private or secret key has (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037 §2): an
# embedded key carrying any of them is refused even where the key would load as public.
_PRIVATE_MEMBERS: Final = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})


def decode_with_embedded_key(
    token: str | bytes,
    *,
    algorithms: Sequence[str],
    typ: str,
    leeway: float = 0,
    now: float | None = None,
    max_size: int = MAX_EMBEDDED_KEY_TOKEN_SIZE,
) -> tuple[dict[str, Any], JWK]:
    """Verify a JWT with the public key in its own `jwk` header; return the claims and the key.

    The one explicit opt-in to a key carried by the token (refused everywhere else): for
    proof-of-possession JWTs such as RFC 9449 DPoP proofs, whose point is that the sender
    holds that key. A valid signature shows only that the token was made with the key; the
    caller decides whether the key (its thumbprint) is the right one. `jku` and `x5u` stay
    refused, the key must be public and asymmetric, and `typ` is required. `exp` is optional.
    """
    check_algorithms(algorithms)
    if leeway < 0:
        raise ValueError("leeway must not be negative")
    protected, encoded, sig_text = split_compact(token, max_size)
    header, key = _EMBEDDED_HEADERS.get(protected) or _embedded_header(protected)
    impl = _algorithm(header["alg"], algorithms)
    signature = b64decode(sig_text, "signature")
    verify_signature(impl, key, header, f"{protected}.{encoded}".encode("ascii"), signature)
    _check_typ(header.get("typ"), typ)
    claims = loads_claims(b64decode(encoded, "payload"), "claims set")
    _validate(claims, None, None, None, leeway, (), False, None, now)
    return claims, key


def _embedded_header(protected: str) -> tuple[dict[str, Any], JWK]:
    header = loads_object(b64decode(protected, "protected header"), "protected header")
    if not isinstance(header.get("alg"), str):
        raise InvalidHeader("the header has no 'alg' string")
    check_crit(header, _UNDERSTOOD)
    for name in ("jku", "x5u", "b64"):
        if name in header:
            raise InvalidHeader(f"header parameter {name!r} is refused here")
    for name in ("kid", "typ", "cty"):
        if name in header and not isinstance(header[name], str):
            raise InvalidHeader(f"header parameter {name!r} must be a string")
    members = header.get("jwk")
    if not isinstance(members, dict):
        raise InvalidHeader("the header has no 'jwk' object with the signing key")
    if not _PRIVATE_MEMBERS.isdisjoint(members):
        raise InvalidHeader("the 'jwk' header must hold a public asymmetric key")
    key = JWK.from_dict(members)
    if key.is_private or key.is_symmetric:
        raise InvalidHeader("the 'jwk' header must hold a public asymmetric key")
    if len(_EMBEDDED_HEADERS) >= _EMBEDDED_HEADERS_MAX:
        _EMBEDDED_HEADERS.clear()
    _EMBEDDED_HEADERS[protected] = (header, key)
    return header, key


def unverified_header(token: str | bytes, *, max_size: int = MAX_TOKEN_SIZE) -> dict[str, Any]:
    """The token's header, parsed but NOT verified: use it only to choose a key or a path."""
    return _unverified_header(token, max_size=max_size)
