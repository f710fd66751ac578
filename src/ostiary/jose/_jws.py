"""JSON Web Signature (RFC 7515): compact, general and flattened JSON, detached and RFC 7797."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from ._b64 import b64decode, b64encode
from ._errors import (
    BadSignature,
    InvalidHeader,
    InvalidKey,
    KeyNotFound,
    MalformedToken,
    TokenTooLarge,
    UnsupportedAlgorithm,
)
from ._header import check_crit, check_disjoint, check_refused
from ._json import dumps, loads_object
from ._jwa import SIGNATURE_ALGORITHMS, SignatureAlgorithm
from ._jwk import JWK, JWKSet, KeyInput, candidate_keys, coerce_keys
from ._limits import MAX_TOKEN_SIZE

_UNDERSTOOD: Final = frozenset({"b64"})  # RFC 7797 is the only extension we implement

# Protected headers repeat across tokens from one issuer, so their validated parse is cached
# by the exact base64url text. Entries are never handed out: callers get copies.
_HEADER_CACHE: dict[str, dict[str, Any]] = {}
_HEADER_CACHE_MAX: Final = 512


def check_algorithms(algorithms: object) -> None:
    """The caller's allow-list: a non-empty list of names, with no default."""
    if isinstance(algorithms, str | bytes) or not algorithms:
        raise TypeError('algorithms= must be a non-empty list of names, e.g. ["ES256"]')


def parse_protected(segment: str) -> dict[str, Any]:
    """Decode and validate a JWS protected header segment (cached; do not mutate the result)."""
    header = _HEADER_CACHE.get(segment)
    if header is not None:
        return header
    header = loads_object(b64decode(segment, "protected header"), "protected header")
    _check_header(header, header)
    if len(_HEADER_CACHE) >= _HEADER_CACHE_MAX:
        _HEADER_CACHE.clear()
    _HEADER_CACHE[segment] = header
    return header


def _check_header(protected: Mapping[str, Any], merged: Mapping[str, Any]) -> None:
    alg = merged.get("alg")
    if not isinstance(alg, str):
        raise InvalidHeader("the header has no 'alg' string")
    check_crit(protected, _UNDERSTOOD)
    check_refused(merged)
    if "b64" in protected:
        if not isinstance(protected["b64"], bool):
            raise InvalidHeader("'b64' must be a boolean")
        # RFC 7797 §6: b64 changes how the signature is computed, so it must be critical.
        if "b64" not in protected.get("crit", ()):
            raise InvalidHeader("'b64' must be listed in 'crit'")
    for name in ("kid", "typ", "cty"):
        if name in merged and not isinstance(merged[name], str):
            raise InvalidHeader(f"header parameter {name!r} must be a string")


def _algorithm(alg: str, algorithms: Sequence[str]) -> SignatureAlgorithm:
    if alg not in algorithms:
        raise UnsupportedAlgorithm(f"algorithm {alg!r} is not in the allowed algorithms")
    impl = SIGNATURE_ALGORITHMS.get(alg)
    if impl is None:
        raise UnsupportedAlgorithm(f"algorithm {alg!r} is not supported")
    return impl


def _signing_algorithm(alg: str) -> SignatureAlgorithm:
    impl = SIGNATURE_ALGORITHMS.get(alg)
    if impl is None:
        raise UnsupportedAlgorithm(
            f"cannot sign with {alg!r}; supported: {', '.join(SIGNATURE_ALGORITHMS)}"
        )
    return impl


def verify_signature(
    impl: SignatureAlgorithm,
    keys: JWK | JWKSet,
    header: Mapping[str, Any],
    signing_input: bytes,
    signature: bytes,
) -> JWK:
    """Try the keys that may verify this header; return the one that did."""
    alg = impl.name
    if type(keys) is JWK:
        # A lone key is the common case: skip building a candidate list, and remember that
        # the key passed its checks for this alg (keys never change after creation).
        if alg != keys._verified_alg:
            if not impl.accepts(keys) or (keys.alg is not None and keys.alg != alg):
                crv = f" {keys.crv}" if keys.crv else ""
                raise InvalidKey(f"the key ({keys.kty}{crv}, alg {keys.alg}) cannot verify {alg}")
            if not keys.allows("verify"):
                raise InvalidKey("the key's 'use' or 'key_ops' does not allow verification")
            keys._verified_alg = alg
        if impl.verify(keys, signing_input, signature):
            return keys
        raise BadSignature()
    candidates = [
        key
        for key in candidate_keys(keys, kid=header.get("kid"), alg=alg, kty=impl.kty, op="verify")
        if impl.accepts(key)
    ]
    if not candidates:
        raise KeyNotFound(f"no key in the set can verify {alg} (kid {header.get('kid')!r})")
    for key in candidates:
        if impl.verify(key, signing_input, signature):
            return key
    raise BadSignature()


def _coerce_payload(payload: bytes | str) -> bytes:
    if isinstance(payload, str):
        return payload.encode("utf-8")
    if isinstance(payload, bytes | bytearray):
        return bytes(payload)
    raise TypeError("payload must be bytes or str")


def _signing_key(key: object, impl: SignatureAlgorithm) -> JWK:
    keys = coerce_keys(key)
    if isinstance(keys, JWKSet):
        found = [k for k in keys if k.kty == impl.kty and k.is_private and k.allows("sign")]
        if len(found) != 1:
            raise InvalidKey("pass the one signing key, not a key set")
        keys = found[0]
    impl.check_key(keys)
    if keys.alg is not None and keys.alg != impl.name:
        raise InvalidKey(f"the key is for {keys.alg}, not {impl.name}")
    if not keys.allows("sign"):
        raise InvalidKey("the key's 'use' or 'key_ops' does not allow signing")
    return keys


def build_protected(
    alg: str, key: JWK, headers: Mapping[str, Any] | None, defaults: Mapping[str, Any]
) -> dict[str, Any]:
    """The protected header for signing: alg, the key's kid, then the caller's headers."""
    header: dict[str, Any] = {"alg": alg, **defaults}
    if key.kid is not None:
        header["kid"] = key.kid
    if headers:
        if "alg" in headers and headers["alg"] != alg:
            raise ValueError("pass the algorithm as alg=, not in headers")
        header.update(headers)
    check_crit(header, _UNDERSTOOD)
    return header


def sign(
    payload: bytes | str,
    key: KeyInput,
    *,
    alg: str,
    headers: Mapping[str, Any] | None = None,
    detached: bool = False,
    b64: bool = True,
) -> str:
    """Sign a payload into a compact JWS.

    `detached=True` leaves the payload out (`header..signature`); `b64=False` signs the raw
    payload (RFC 7797), which is then marked critical.
    """
    data = _coerce_payload(payload)
    impl = _signing_algorithm(alg)
    jwk = _signing_key(key, impl)
    extra: dict[str, Any] = {}
    if not b64:
        crit = list((headers or {}).get("crit", []))
        extra = {"b64": False, "crit": [*crit, "b64"] if "b64" not in crit else crit}
    header = build_protected(alg, jwk, {**(headers or {}), **extra} if extra else headers, {})
    protected = b64encode(dumps(header))
    if b64:
        encoded = b64encode(data)
        signing_input = f"{protected}.{encoded}".encode("ascii")
    else:
        if not detached and b"." in data:
            raise ValueError("an unencoded compact payload must not contain '.' (RFC 7797 §5.2)")
        encoded = "" if detached else data.decode("utf-8")
        signing_input = protected.encode("ascii") + b"." + data
    signature = b64encode(impl.sign(jwk, signing_input))
    return f"{protected}.{'' if detached else encoded}.{signature}"


def verify(
    token: str | bytes,
    key: KeyInput,
    *,
    algorithms: Sequence[str],
    detached_payload: bytes | str | None = None,
    max_size: int = MAX_TOKEN_SIZE,
) -> bytes:
    """Verify a compact JWS and return its payload."""
    payload, _ = verify_compact(
        token,
        coerce_keys(key),
        algorithms=algorithms,
        detached_payload=detached_payload,
        max_size=max_size,
    )
    return payload


def split_token(token: str | bytes, max_size: int) -> list[str]:
    """Size-check a compact serialization, require ASCII, and split it at the dots."""
    if type(token) is str and len(token) <= max_size and token.isascii():
        return token.split(".")
    if isinstance(token, bytes | bytearray):
        if len(token) > max_size:
            raise TokenTooLarge(f"the token is larger than {max_size} bytes")
        try:
            token = bytes(token).decode("ascii")
        except UnicodeDecodeError:
            raise MalformedToken("the token must be ASCII") from None
    elif not isinstance(token, str):
        raise MalformedToken("the token must be a string")
    elif not token.isascii():
        raise MalformedToken("the token must be ASCII")
    if len(token) > max_size:
        raise TokenTooLarge(f"the token is larger than {max_size} bytes")
    return token.split(".")


def split_compact(token: str | bytes, max_size: int, parts: int = 3) -> list[str]:
    """Split a compact serialization that must have exactly `parts` parts."""
    pieces = split_token(token, max_size)
    if len(pieces) != parts:
        if pieces[0].lstrip().startswith("{"):
            raise MalformedToken("expected a compact token, got JSON; use the JSON API")
        raise MalformedToken(f"a compact token has {parts} parts separated by '.'")
    return pieces


def verify_compact(
    token: str | bytes,
    keys: JWK | JWKSet,
    *,
    algorithms: Sequence[str],
    detached_payload: bytes | str | None = None,
    max_size: int = MAX_TOKEN_SIZE,
) -> tuple[bytes, dict[str, Any]]:
    """Verify a compact JWS; return the payload and the (cached, read-only) header."""
    check_algorithms(algorithms)
    protected, encoded, sig_text = split_compact(token, max_size)
    header = parse_protected(protected)
    impl = _algorithm(header["alg"], algorithms)
    signature = b64decode(sig_text, "signature")
    if header.get("b64", True):
        if detached_payload is not None:
            if encoded:
                raise MalformedToken("the token carries a payload, but a detached one was given")
            encoded = b64encode(_coerce_payload(detached_payload))
        signing_input = f"{protected}.{encoded}".encode("ascii")
        verify_signature(impl, keys, header, signing_input, signature)
        return b64decode(encoded, "payload"), header
    if detached_payload is not None:
        if encoded:
            raise MalformedToken("the token carries a payload, but a detached one was given")
        raw = _coerce_payload(detached_payload)
    else:
        raw = encoded.encode("ascii")
    verify_signature(impl, keys, header, protected.encode("ascii") + b"." + raw, signature)
    return raw, header


def unverified_header(token: str | bytes, *, max_size: int = MAX_TOKEN_SIZE) -> dict[str, Any]:
    """The protected header of a compact JWS or JWE, parsed but NOT verified."""
    if isinstance(token, str | bytes | bytearray) and len(token) > max_size:
        raise TokenTooLarge(f"the token is larger than {max_size} bytes")
    first = (
        token.split(b".", 1)[0].decode("ascii", "replace")
        if isinstance(token, bytes | bytearray)
        else str(token).split(".", 1)[0]
    )
    return dict(loads_object(b64decode(first, "protected header"), "protected header"))


# -- JSON serialization (RFC 7515 §7.2) ---------------------------------------------------


def sign_json(
    payload: bytes | str,
    signers: Sequence[tuple[Any, ...]],
    *,
    flatten: bool = False,
    detached: bool = False,
) -> dict[str, Any]:
    """Sign with one or more keys into the general (or, for one signer, flattened) JSON form.

    Each signer is `(key, alg)` or `(key, alg, protected_headers, unprotected_headers)`.
    """
    data = _coerce_payload(payload)
    if not signers:
        raise ValueError("give at least one (key, alg) signer")
    if flatten and len(signers) != 1:
        raise ValueError("the flattened serialization holds exactly one signature")
    prepared = []
    b64_values = set()
    for signer in signers:
        if len(signer) not in (2, 4):
            raise ValueError("a signer is (key, alg) or (key, alg, protected, unprotected)")
        key, alg = signer[0], signer[1]
        extra_protected = signer[2] if len(signer) == 4 else None
        unprotected = dict(signer[3]) if len(signer) == 4 and signer[3] else None
        impl = _signing_algorithm(alg)
        jwk = _signing_key(key, impl)
        header = build_protected(alg, jwk, extra_protected, {})
        if unprotected:
            try:
                check_disjoint(header, unprotected)
            except InvalidHeader as exc:
                raise ValueError(str(exc)) from None
            if "crit" in unprotected:
                raise ValueError("'crit' belongs in the protected header")
        b64_values.add(header.get("b64", True))
        prepared.append((impl, jwk, header, unprotected))
    if len(b64_values) > 1:
        raise ValueError("all signatures must agree on 'b64' (RFC 7797 §3)")
    b64 = b64_values.pop()
    encoded_payload = b64encode(data) if b64 else data.decode("utf-8")
    signatures = []
    for impl, jwk, header, unprotected in prepared:
        protected = b64encode(dumps(header))
        if b64:
            signing_input = f"{protected}.{encoded_payload}".encode("ascii")
        else:
            signing_input = protected.encode("ascii") + b"." + data
        entry: dict[str, Any] = {"protected": protected}
        if unprotected:
            entry["header"] = unprotected
        entry["signature"] = b64encode(impl.sign(jwk, signing_input))
        signatures.append(entry)
    out: dict[str, Any] = {} if detached else {"payload": encoded_payload}
    if flatten:
        out.update(signatures[0])
    else:
        out["signatures"] = signatures
    return out


def verify_json(
    obj: Mapping[str, Any] | str | bytes,
    key: KeyInput,
    *,
    algorithms: Sequence[str],
    detached_payload: bytes | str | None = None,
    max_size: int = MAX_TOKEN_SIZE,
) -> bytes:
    """Verify a general or flattened JSON JWS; succeeds when any signature verifies."""
    payload, _ = verify_json_detailed(
        obj, key, algorithms=algorithms, detached_payload=detached_payload, max_size=max_size
    )
    return payload


def verify_json_detailed(
    obj: Mapping[str, Any] | str | bytes,
    key: KeyInput,
    *,
    algorithms: Sequence[str],
    detached_payload: bytes | str | None = None,
    max_size: int = MAX_TOKEN_SIZE,
) -> tuple[bytes, dict[str, Any]]:
    """Like `verify_json`, also returning the merged header of the signature that verified."""
    check_algorithms(algorithms)
    keys = coerce_keys(key)
    data = _load_json(obj, max_size)
    if "signatures" in data:
        if "signature" in data or "protected" in data or "header" in data:
            raise MalformedToken("a JWS is either general or flattened, not both")
        entries = data["signatures"]
        if not isinstance(entries, list) or not entries:
            raise MalformedToken("'signatures' must be a non-empty array")
    elif "signature" in data:
        entries = [{k: data[k] for k in ("protected", "header", "signature") if k in data}]
    else:
        raise MalformedToken("a JSON JWS needs 'signatures' or 'signature'")
    encoded = data.get("payload")
    if detached_payload is not None:
        if encoded not in (None, ""):
            raise MalformedToken("the JWS carries a payload, but a detached one was given")
    elif not isinstance(encoded, str):
        raise MalformedToken("'payload' must be a string")

    error: Exception | None = None
    for entry in entries:
        try:
            return _verify_entry(entry, encoded, detached_payload, keys, algorithms)
        except (BadSignature, KeyNotFound, UnsupportedAlgorithm, InvalidKey) as exc:
            error = _stronger(error, exc)
    raise error if error is not None else BadSignature()


_ERROR_RANK: Final = {UnsupportedAlgorithm: 0, InvalidKey: 1, KeyNotFound: 2, BadSignature: 3}


def _stronger(current: Exception | None, new: Exception) -> Exception:
    # Report the failure that got furthest, so "wrong key" beats "unsupported alg".
    if current is None:
        return new
    rank_new = max(r for t, r in _ERROR_RANK.items() if isinstance(new, t))
    rank_old = max(r for t, r in _ERROR_RANK.items() if isinstance(current, t))
    return new if rank_new > rank_old else current


def _verify_entry(
    entry: object,
    encoded: object,
    detached_payload: bytes | str | None,
    keys: JWK | JWKSet,
    algorithms: Sequence[str],
) -> tuple[bytes, dict[str, Any]]:
    if not isinstance(entry, Mapping):
        raise MalformedToken("each signature must be a JSON object")
    unknown = set(entry) - {"protected", "header", "signature"}
    if unknown:
        raise MalformedToken(f"unexpected members in a signature: {sorted(unknown)}")
    protected_text = entry.get("protected", "")
    if not isinstance(protected_text, str):
        raise MalformedToken("'protected' must be a string")
    protected: dict[str, Any] = (
        loads_object(b64decode(protected_text, "protected header"), "protected header")
        if protected_text
        else {}
    )
    unprotected = entry.get("header")
    if unprotected is not None and not isinstance(unprotected, Mapping):
        raise MalformedToken("'header' must be a JSON object")
    check_disjoint(protected, unprotected)
    check_crit(protected, _UNDERSTOOD, unprotected)
    merged = {**protected, **(unprotected or {})}
    _check_header(protected, merged)
    if "b64" in merged and "b64" not in protected:
        raise InvalidHeader("'b64' must be in the protected header")
    impl = _algorithm(merged["alg"], algorithms)
    sig_text = entry.get("signature")
    if not isinstance(sig_text, str):
        raise MalformedToken("'signature' must be a string")
    signature = b64decode(sig_text, "signature")
    b64 = protected.get("b64", True)
    if detached_payload is not None:
        raw = _coerce_payload(detached_payload)
        payload_part = b64encode(raw).encode("ascii") if b64 else raw
    else:
        if not isinstance(encoded, str):  # pragma: no cover - checked by the caller
            raise MalformedToken("'payload' must be a string")
        payload_part = encoded.encode("utf-8")
        raw = b64decode(encoded, "payload") if b64 else payload_part
    signing_input = protected_text.encode("ascii") + b"." + payload_part
    verify_signature(impl, keys, merged, signing_input, signature)
    return raw, merged


def _load_json(obj: Mapping[str, Any] | str | bytes, max_size: int) -> Mapping[str, Any]:
    if isinstance(obj, str | bytes | bytearray):
        if len(obj) > max_size:
            raise TokenTooLarge(f"the JWS is larger than {max_size} bytes")
        return loads_object(bytes(obj) if isinstance(obj, bytearray) else obj, "JWS JSON")
    if isinstance(obj, Mapping):
        try:
            size = len(dumps(obj))
        except TypeError:
            raise MalformedToken("the JWS holds values that are not JSON") from None
        if size > max_size:
            raise TokenTooLarge(f"the JWS is larger than {max_size} bytes")
        return obj
    raise MalformedToken("a JSON JWS must be an object or its JSON text")
