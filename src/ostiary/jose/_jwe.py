"""JSON Web Encryption (RFC 7516): compact, general JSON and flattened JSON serializations."""

from __future__ import annotations

import zlib
from collections.abc import Collection, Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any, Final

from . import _limits
from ._b64 import b64decode, b64encode
from ._errors import (
    DecryptionFailed,
    InvalidHeader,
    InvalidKey,
    KeyNotFound,
    MalformedToken,
    TokenTooLarge,
    UnsupportedAlgorithm,
)
from ._header import check_crit, check_disjoint, check_refused
from ._json import dumps, loads_object
from ._jwe_content import CONTENT_ENCRYPTION, ContentEncryption
from ._jwe_keys import DECRYPT_ONLY, KEY_MANAGEMENT, KeyManagement, Params
from ._jwk import JWK, JWKSet, KeyInput, candidate_keys, coerce_keys

MAX_RECIPIENTS: Final = 64
"""Most recipients a JWE JSON object may list: each one may cost a private-key operation."""

_NOTHING_UNDERSTOOD: Final = frozenset[str]()
# Members the library writes itself: callers pass `alg`, `enc` and `zip` as arguments, and
# `epk`, `iv` and `tag` are fresh randomness that a caller must never fix.
_RESERVED: Final = frozenset({"alg", "enc", "zip", "epk", "iv", "tag"})
_CACHED_HEADER_MAX: Final = 1024  # longer protected headers are parsed without caching
# Tuples, not `X | Y`: a union in a hot isinstance() call is rebuilt on every call.
_TEXT: Final = (str, bytes)
_BINARY: Final = (bytes, bytearray)


class _Protected:
    """A compact JWE's protected header, parsed and checked once."""

    __slots__ = ("alg", "enc", "header", "kid", "zip")

    def __init__(self, header: dict[str, Any], alg: str, enc: str, kid: str | None) -> None:
        self.header = header
        self.alg = alg
        self.enc = enc
        self.kid = kid
        self.zip = "zip" in header


# -- headers --------------------------------------------------------------------------------


def _check_header(
    protected: Mapping[str, Any],
    unprotected: Mapping[str, Any] | None,
    joint: Mapping[str, Any],
) -> tuple[str, str, str | None]:
    """Apply the header rules to one recipient's view; return `(alg, enc, kid)`."""
    check_crit(protected, _NOTHING_UNDERSTOOD, unprotected)
    check_refused(joint)
    alg = joint.get("alg")
    if not isinstance(alg, str):
        raise InvalidHeader("a JWE header needs 'alg' as a string")
    enc = joint.get("enc")
    if not isinstance(enc, str):
        raise InvalidHeader("a JWE header needs 'enc' as a string")
    if "zip" in joint:
        if "zip" not in protected:  # RFC 7516 §4.1.3: it must be integrity protected
            raise InvalidHeader("'zip' must be in the protected header")
        if joint["zip"] != "DEF":
            raise InvalidHeader(f"unsupported compression 'zip': {joint['zip']!r}")
    kid = joint.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise InvalidHeader("'kid' must be a string")
    return alg, enc, kid


def _parse_compact_header(segment: str) -> _Protected:
    header = loads_object(b64decode(segment, "JWE protected header"), "JWE protected header")
    alg, enc, kid = _check_header(header, None, header)
    return _Protected(header, alg, enc, kid)


_parse_compact_header_cached = lru_cache(maxsize=256)(_parse_compact_header)


def _read_compact_header(segment: str) -> _Protected:
    # Issuers repeat the same header for every token, so most decrypts skip the JSON parse.
    if len(segment) <= _CACHED_HEADER_MAX:
        return _parse_compact_header_cached(segment)
    return _parse_compact_header(segment)


@lru_cache(maxsize=256)
def _compact_header(alg: str, enc: str, kid: str | None, zip: str | None) -> str:
    header: dict[str, Any] = {"alg": alg, "enc": enc}
    if zip is not None:
        header["zip"] = zip
    if kid is not None:
        header["kid"] = kid
    return b64encode(dumps(header))


def _caller_header(value: Mapping[str, Any] | None, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(f"{what} must be a mapping of header parameters")
    header = dict(value)
    reserved = _RESERVED.intersection(header)
    if reserved:
        raise ValueError(
            f"{what} must not set {sorted(reserved)}: pass alg, enc and zip as arguments; "
            "epk, iv and tag are chosen by the library"
        )
    if not all(isinstance(name, str) for name in header):
        raise TypeError(f"{what} names must be strings")
    return header


def _no_overlap(*headers: Mapping[str, Any]) -> None:
    try:
        check_disjoint(*headers)
    except InvalidHeader as exc:
        raise ValueError(str(exc)) from None


# -- arguments ------------------------------------------------------------------------------


def _plaintext_bytes(plaintext: object) -> bytes:
    if isinstance(plaintext, bytes):
        return plaintext
    if isinstance(plaintext, bytearray | memoryview):
        return bytes(plaintext)
    raise TypeError("the plaintext must be bytes; encode text first")


_ALG_NAMES: Final = frozenset(KEY_MANAGEMENT)
_ENC_NAMES: Final = frozenset(CONTENT_ENCRYPTION)


def _check_allowlists(algorithms: Collection[str], encryptions: Collection[str]) -> None:
    # The same rule as JWS. A string would pass `in` tests by substring ("RSA-OAEP" is in
    # "RSA-OAEP-256"), and an empty list is a mistake, not a policy.
    if isinstance(algorithms, _TEXT) or not algorithms:
        raise TypeError('algorithms= must be a non-empty list of names, e.g. ["RSA-OAEP-256"]')
    if isinstance(encryptions, _TEXT) or not encryptions:
        raise TypeError('encryptions= must be a non-empty list of names, e.g. ["A256GCM"]')


def _not_allowed(kind: str, name: object, allowed: Collection[str]) -> UnsupportedAlgorithm:
    known = _ALG_NAMES if kind == "algorithm" else _ENC_NAMES
    unknown = sorted(str(item) for item in set(allowed) - known)
    hint = f"; the allowed list also names {unknown}, which JWE does not define" if unknown else ""
    return UnsupportedAlgorithm(f"JWE {kind} {name!r} is not allowed{hint}")


def _encryption(enc: str) -> ContentEncryption:
    ce = CONTENT_ENCRYPTION.get(enc)
    if ce is None:
        raise UnsupportedAlgorithm(f"unsupported JWE content encryption 'enc': {enc!r}")
    return ce


def _key_management(alg: str) -> KeyManagement:
    km = KEY_MANAGEMENT.get(alg)
    if km is None or alg in DECRYPT_ONLY:
        raise UnsupportedAlgorithm(f"cannot encrypt with JWE algorithm {alg!r}")
    return km


def _check_zip(zip: str | None) -> None:
    if zip is not None and zip != "DEF":
        raise ValueError(f"unsupported compression {zip!r}; only 'DEF' exists")


# -- keys -----------------------------------------------------------------------------------


def _unfit(
    key: JWK,
    km: KeyManagement,
    ce: ContentEncryption,
    params: Params | None,
    *,
    decrypting: bool,
) -> str | None:
    """Why `key` may not serve `km` (None when it may): family, `alg`, use, size, curve."""
    if key.kty not in km.key_types:
        return f"{km.name} needs a key of type {' or '.join(km.key_types)}, not {key.kty}"
    # A `dir` key may name the content algorithm it is for (RFC 7517 §4.4).
    if key.alg is not None and key.alg != km.name and not (km.reuses_key and key.alg == ce.name):
        return f"the key is for {key.alg!r}, not {km.name!r}"
    op = km.unwrap_op if decrypting else km.wrap_op
    if not key.allows(op):
        return f"the key's 'use' or 'key_ops' does not allow {op!r}"
    if decrypting and not key.is_private:
        return "decryption needs the private key"
    return km.unfit(key, ce, params)


# Verdicts of `_unfit` for single keys, by (id(key), alg, enc, decrypting). Each entry holds
# its key, so an id cannot be reused while its verdict is cached. JWKs are never mutated.
_FIT_CACHE: dict[tuple[int, str, str, bool], JWK] = {}
_FIT_CACHE_MAX: Final = 256


def _check_key(
    key: JWK,
    km: KeyManagement,
    ce: ContentEncryption,
    params: Params | None,
    *,
    decrypting: bool,
) -> None:
    slot = (id(key), km.name, ce.name, decrypting)
    if _FIT_CACHE.get(slot) is key:
        return
    problem = _unfit(key, km, ce, params, decrypting=decrypting)
    if problem is not None:
        raise InvalidKey(problem)
    if params is None or params.epk is None:  # an ECDH verdict depends on the token's curve
        if len(_FIT_CACHE) >= _FIT_CACHE_MAX:
            _FIT_CACHE.clear()
        _FIT_CACHE[slot] = key


def _encryption_key(key: KeyInput, km: KeyManagement, ce: ContentEncryption) -> JWK:
    keys = key if isinstance(key, JWK) else coerce_keys(key)
    if isinstance(keys, JWK):
        _check_key(keys, km, ce, None, decrypting=False)
        return keys
    for candidate in keys:
        if _unfit(candidate, km, ce, None, decrypting=False) is None:
            return candidate
    raise KeyNotFound(f"no key in the set can encrypt with {km.name}")


def _decryption_keys(
    keys: JWK | JWKSet,
    km: KeyManagement,
    ce: ContentEncryption,
    kid: str | None,
    params: Params,
) -> Sequence[JWK]:
    if isinstance(keys, JWK):
        _check_key(keys, km, ce, params, decrypting=True)
        return (keys,)
    found: list[JWK] = []
    for kty in (params.epk.kty,) if params.epk is not None else km.key_types:
        found += candidate_keys(keys, kid=kid, alg=km.name, kty=kty, op=km.unwrap_op)
    if km.reuses_key:  # a `dir` key may carry the enc name as its `alg` (RFC 7517 §4.4)
        found += [
            key
            for key in candidate_keys(keys, kid=kid, alg=ce.name, kty="oct", op=km.unwrap_op)
            if key.alg == ce.name
        ]
    usable = [key for key in found if _unfit(key, km, ce, params, decrypting=True) is None]
    if not usable:
        raise KeyNotFound(f"no key in the set can decrypt {km.name} (kid {kid!r})")
    return usable


def _spend_pbes2(params: Params, attempts: int, budget: int) -> int:
    """Charge PBKDF2 work for `attempts` derivations; return what is left of the budget."""
    cost = params.p2c * attempts
    if cost > budget:
        raise InvalidHeader(
            f"PBES2 would run {cost} iterations across keys and recipients, over the limit"
        )
    return budget - cost


# -- decryption -----------------------------------------------------------------------------


def _open(
    candidates: Sequence[JWK],
    km: KeyManagement,
    ce: ContentEncryption,
    params: Params,
    *,
    encrypted_key: bytes,
    iv: bytes,
    ciphertext: bytes,
    tag: bytes,
    aad: bytes,
) -> bytes:
    for key in candidates:
        try:
            cek = km.unwrap(key, ce, params, encrypted_key)
            return ce.decrypt(cek, iv, ciphertext, tag, aad, reuse=km.reuses_key)
        except DecryptionFailed:
            continue
    raise DecryptionFailed()


def _check_encrypted_key(km: KeyManagement, encrypted_key: bytes) -> None:
    if km.direct:
        if encrypted_key:  # RFC 7518 §4.5, §4.6: the encrypted key must be empty
            raise MalformedToken(f"{km.name} must have an empty encrypted key")
    elif not encrypted_key:
        raise MalformedToken(f"{km.name} needs an encrypted key")


def _check_lengths(ce: ContentEncryption, iv: bytes, tag: bytes) -> None:
    if len(iv) != ce.iv_size:
        raise MalformedToken(f"{ce.name} needs a {ce.iv_size * 8}-bit initialization vector")
    if len(tag) != ce.tag_size:
        raise MalformedToken(f"{ce.name} needs a {ce.tag_size * 8}-bit authentication tag")


def _inflate(data: bytes, limit: int) -> bytes:
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)  # raw DEFLATE (RFC 1951), RFC 7516 §4.1.3
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error:
        raise DecryptionFailed() from None
    if len(out) > limit:
        raise TokenTooLarge(f"the decompressed plaintext is larger than {limit} bytes")
    if not inflater.eof or inflater.unused_data:
        raise DecryptionFailed()
    return out


def _deflate(data: bytes) -> bytes:
    deflater = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -zlib.MAX_WBITS)
    return deflater.compress(data) + deflater.flush()


def _compact_text(token: object, max_size: int) -> str:
    if type(token) is str:
        if len(token) > max_size:
            raise TokenTooLarge(f"the token is larger than {max_size} bytes")
        return token
    if isinstance(token, _BINARY):
        if len(token) > max_size:
            raise TokenTooLarge(f"the token is larger than {max_size} bytes")
        try:
            return bytes(token).decode("ascii")
        except UnicodeDecodeError:
            raise MalformedToken("a compact JWE is ASCII text") from None
    if not isinstance(token, str):
        raise MalformedToken("a compact JWE must be a string")
    if len(token) > max_size:
        raise TokenTooLarge(f"the token is larger than {max_size} bytes")
    return token


def _decrypt_compact(
    token: str | bytes,
    key: KeyInput,
    algorithms: Collection[str],
    encryptions: Collection[str],
    limits: tuple[int, int, int],
) -> tuple[bytes, _Protected]:
    """The shared body of `decrypt` and `decrypt_compact`.

    `limits` is (max_size, max_decompressed_size, max_pbes2_count), positional because this
    is the hot path.
    """
    max_size, max_decompressed_size, max_pbes2_count = limits
    text = _compact_text(token, max_size)
    _check_allowlists(algorithms, encryptions)
    parts = text.split(".")
    if len(parts) != 5:
        raise MalformedToken("a compact JWE has five base64url parts separated by '.'")
    segment, ek_part, iv_part, ct_part, tag_part = parts
    protected = _read_compact_header(segment)
    if protected.alg not in algorithms:
        raise _not_allowed("algorithm", protected.alg, algorithms)
    if protected.enc not in encryptions:
        raise _not_allowed("content encryption", protected.enc, encryptions)
    km = KEY_MANAGEMENT[protected.alg]
    ce = CONTENT_ENCRYPTION[protected.enc]
    params = km.read(protected.header, max_pbes2_count)
    encrypted_key = b64decode(ek_part, "JWE encrypted key") if ek_part else b""
    _check_encrypted_key(km, encrypted_key)
    iv = b64decode(iv_part, "JWE initialization vector")
    ciphertext = b64decode(ct_part, "JWE ciphertext")
    tag = b64decode(tag_part, "JWE authentication tag")
    _check_lengths(ce, iv, tag)
    keys = key if isinstance(key, JWK) else coerce_keys(key)
    candidates = _decryption_keys(keys, km, ce, protected.kid, params)
    if params.p2c:
        _spend_pbes2(params, len(candidates), max_pbes2_count)
    plaintext = _open(
        candidates,
        km,
        ce,
        params,
        encrypted_key=encrypted_key,
        iv=iv,
        ciphertext=ciphertext,
        tag=tag,
        aad=segment.encode("ascii"),
    )
    if protected.zip:
        plaintext = _inflate(plaintext, max_decompressed_size)
    return plaintext, protected


def decrypt(
    token: str | bytes,
    key: KeyInput,
    *,
    algorithms: Collection[str],
    encryptions: Collection[str],
    max_size: int = _limits.MAX_TOKEN_SIZE,
    max_decompressed_size: int = _limits.MAX_DECOMPRESSED_SIZE,
    max_pbes2_count: int = _limits.MAX_PBES2_COUNT,
) -> bytes:
    """Decrypt a compact JWE; `algorithms` and `encryptions` are the allowed `alg`/`enc`.

    ```python
    plaintext = jwe.decrypt(token, key, algorithms=["RSA-OAEP-256"], encryptions=["A256GCM"])
    ```
    """
    limits = (max_size, max_decompressed_size, max_pbes2_count)
    return _decrypt_compact(token, key, algorithms, encryptions, limits)[0]


def decrypt_compact(
    token: str | bytes,
    keys: KeyInput,
    *,
    algorithms: Collection[str],
    encryptions: Collection[str],
    max_size: int = _limits.MAX_TOKEN_SIZE,
    max_decompressed_size: int = _limits.MAX_DECOMPRESSED_SIZE,
    max_pbes2_count: int = _limits.MAX_PBES2_COUNT,
) -> tuple[bytes, dict[str, Any]]:
    """Decrypt a compact JWE and return the plaintext with (a copy of) its protected header.

    For nested JWTs: the caller checks `cty`.
    """
    limits = (max_size, max_decompressed_size, max_pbes2_count)
    plaintext, protected = _decrypt_compact(token, keys, algorithms, encryptions, limits)
    return plaintext, dict(protected.header)


def unverified_header(
    token: str | bytes, *, max_size: int = _limits.MAX_TOKEN_SIZE
) -> dict[str, Any]:
    """The protected header of a compact JWE, without decrypting or checking anything else."""
    parts = _compact_text(token, max_size).split(".")
    if len(parts) != 5:
        raise MalformedToken("a compact JWE has five base64url parts separated by '.'")
    return loads_object(b64decode(parts[0], "JWE protected header"), "JWE protected header")


def _member(data: Mapping[str, Any], name: str, kind: type, what: str) -> Any:
    value = data.get(name)
    if value is not None and not isinstance(value, kind):
        raise MalformedToken(f"JWE JSON member {name!r} must be {what}")
    return value


def _json_object(obj: object, max_size: int) -> Mapping[str, Any]:
    if isinstance(obj, str | bytes | bytearray):
        if len(obj) > max_size:
            raise TokenTooLarge(f"the JWE is larger than {max_size} bytes")
        return loads_object(bytes(obj) if isinstance(obj, bytearray) else obj, "JWE JSON")
    if not isinstance(obj, Mapping):
        raise MalformedToken("a JWE JSON serialization must be an object or its JSON text")
    size = sum(len(value) for value in obj.values() if isinstance(value, str))
    recipients = obj.get("recipients")
    if isinstance(recipients, list):
        size += sum(
            len(item.get("encrypted_key") or "")
            for item in recipients
            if isinstance(item, Mapping) and isinstance(item.get("encrypted_key"), str)
        )
    if size > max_size:
        raise TokenTooLarge(f"the JWE is larger than {max_size} bytes")
    return obj


def _recipient_entries(data: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    if "recipients" not in data:
        return [data]  # flattened (RFC 7516 §7.2.2)
    if "header" in data or "encrypted_key" in data:
        raise MalformedToken(
            "a general JWE JSON must keep 'header' and 'encrypted_key' per recipient"
        )
    recipients = data["recipients"]
    if not isinstance(recipients, list) or not recipients:
        raise MalformedToken("JWE JSON member 'recipients' must be a non-empty array")
    if len(recipients) > MAX_RECIPIENTS:
        raise TokenTooLarge(f"a JWE may list at most {MAX_RECIPIENTS} recipients")
    if not all(isinstance(item, Mapping) for item in recipients):
        raise MalformedToken("each JWE recipient must be an object")
    return recipients


def decrypt_json(
    obj: Mapping[str, Any] | str | bytes,
    key: KeyInput,
    *,
    algorithms: Collection[str],
    encryptions: Collection[str],
    max_size: int = _limits.MAX_TOKEN_SIZE,
    max_decompressed_size: int = _limits.MAX_DECOMPRESSED_SIZE,
    max_pbes2_count: int = _limits.MAX_PBES2_COUNT,
) -> bytes:
    """Decrypt a JWE in the general or flattened JSON serialization (a dict or its text).

    Succeeds when any recipient with an allowed `alg` can be decrypted with a matching key.
    """
    data = _json_object(obj, max_size)
    _check_allowlists(algorithms, encryptions)
    segment = _member(data, "protected", str, "a string") or ""
    protected = (
        loads_object(b64decode(segment, "JWE protected header"), "JWE protected header")
        if "protected" in data
        else {}
    )
    shared = _member(data, "unprotected", Mapping, "an object") or {}
    aad_text = _member(data, "aad", str, "a string")
    if aad_text is not None:
        b64decode(aad_text, "JWE aad")
    iv = b64decode(_member(data, "iv", str, "a string") or "", "JWE initialization vector")
    ct_text = _member(data, "ciphertext", str, "a string")
    if ct_text is None:
        raise MalformedToken("JWE JSON needs a 'ciphertext' member")
    ciphertext = b64decode(ct_text, "JWE ciphertext")
    tag = b64decode(_member(data, "tag", str, "a string") or "", "JWE authentication tag")

    views: list[tuple[str, str | None, dict[str, Any], bytes]] = []
    enc: str | None = None
    for entry in _recipient_entries(data):
        header = _member(entry, "header", Mapping, "an object") or {}
        ek_text = _member(entry, "encrypted_key", str, "a string")
        check_disjoint(protected, shared, header)
        unprotected = {**shared, **header}
        joint = {**protected, **unprotected}
        alg, this_enc, kid = _check_header(protected, unprotected, joint)
        if enc is None:
            enc = this_enc
        elif this_enc != enc:
            raise InvalidHeader("all recipients of a JWE must share one 'enc'")
        encrypted_key = b64decode(ek_text, "JWE encrypted key") if ek_text else b""
        views.append((alg, kid, joint, encrypted_key))
    if enc is None or enc not in encryptions:
        raise _not_allowed("content encryption", enc, encryptions)
    ce = CONTENT_ENCRYPTION[enc]
    _check_lengths(ce, iv, tag)
    allowed = [view for view in views if view[0] in algorithms]
    if not allowed:
        names = sorted({view[0] for view in views})
        raise UnsupportedAlgorithm(f"no recipient uses an allowed algorithm (found {names})")

    aad = segment.encode("ascii") if aad_text is None else f"{segment}.{aad_text}".encode("ascii")
    keys = coerce_keys(key)
    budget = max_pbes2_count
    selection_error: InvalidKey | KeyNotFound | None = None
    tried = False
    for alg, kid, joint, encrypted_key in allowed:
        km = KEY_MANAGEMENT[alg]
        params = km.read(joint, max_pbes2_count)
        _check_encrypted_key(km, encrypted_key)
        try:
            candidates = _decryption_keys(keys, km, ce, kid, params)
        except (InvalidKey, KeyNotFound) as exc:
            selection_error = selection_error or exc
            continue
        if params.p2c:
            budget = _spend_pbes2(params, len(candidates), budget)
        tried = True
        try:
            plaintext = _open(
                candidates,
                km,
                ce,
                params,
                encrypted_key=encrypted_key,
                iv=iv,
                ciphertext=ciphertext,
                tag=tag,
                aad=aad,
            )
        except DecryptionFailed:
            continue
        if "zip" in protected:
            plaintext = _inflate(plaintext, max_decompressed_size)
        return plaintext
    if not tried and selection_error is not None:
        raise selection_error
    raise DecryptionFailed()


# -- encryption -----------------------------------------------------------------------------


def encrypt(
    plaintext: bytes,
    key: KeyInput,
    *,
    alg: str,
    enc: str,
    headers: Mapping[str, Any] | None = None,
    zip: str | None = None,
) -> str:
    """Encrypt to a compact JWE. The key's `kid`, if any, goes into the header.

    ```python
    token = jwe.encrypt(b"secret", rsa_public, alg="RSA-OAEP-256", enc="A256GCM")
    ```
    """
    km = _key_management(alg)
    ce = _encryption(enc)
    data = _plaintext_bytes(plaintext)
    _check_zip(zip)
    jwk = _encryption_key(key, km, ce)
    if zip is not None:
        data = _deflate(data)
    if headers is None and not km.adds_header:
        segment = _compact_header(alg, enc, jwk.kid, zip)
        cek, encrypted_key = km.wrap(jwk, ce, None, {}, {})
    else:
        header: dict[str, Any] = {"alg": alg, "enc": enc}
        if zip is not None:
            header["zip"] = zip
        if jwk.kid is not None:
            header["kid"] = jwk.kid
        header.update(_caller_header(headers, "headers"))
        cek, encrypted_key = km.wrap(jwk, ce, None, header, header)
        segment = b64encode(dumps(header))
    iv, ciphertext, tag = ce.encrypt(cek, data, segment.encode("ascii"), reuse=km.reuses_key)
    return (
        f"{segment}.{b64encode(encrypted_key)}.{b64encode(iv)}."
        f"{b64encode(ciphertext)}.{b64encode(tag)}"
    )


def _recipient(entry: object) -> tuple[KeyInput, str, Mapping[str, Any] | None]:
    if not isinstance(entry, tuple) or len(entry) not in (2, 3):
        raise TypeError("a recipient is (key, alg) or (key, alg, header)")
    if len(entry) == 2:
        return entry[0], entry[1], None
    return entry[0], entry[1], entry[2]


def encrypt_json(
    plaintext: bytes,
    recipients: Iterable[tuple[Any, ...]],
    *,
    enc: str,
    protected: Mapping[str, Any] | None = None,
    unprotected: Mapping[str, Any] | None = None,
    aad: bytes | None = None,
    zip: str | None = None,
    flatten: bool = False,
) -> dict[str, Any]:
    """Encrypt to the general JWE JSON serialization (flattened with `flatten=True`).

    Each recipient is `(key, alg)` or `(key, alg, header)`; `alg` and the key's `kid` go into
    that recipient's header, `enc` and `zip` into the protected header.
    """
    ce = _encryption(enc)
    data = _plaintext_bytes(plaintext)
    _check_zip(zip)
    entries = [_recipient(entry) for entry in recipients]
    if not entries:
        raise ValueError("a JWE needs at least one recipient")
    if flatten and len(entries) != 1:
        raise ValueError("the flattened serialization has exactly one recipient")
    if len(entries) > MAX_RECIPIENTS:
        raise ValueError(f"a JWE may have at most {MAX_RECIPIENTS} recipients")
    if aad is not None and not isinstance(aad, bytes):
        raise TypeError("aad must be bytes")

    prot: dict[str, Any] = {"enc": enc}
    if zip is not None:
        prot["zip"] = zip
    prot.update(_caller_header(protected, "protected"))
    shared = _caller_header(unprotected, "unprotected")
    _no_overlap(prot, shared)

    cek: bytes | None = None
    reuse = False
    wrapped: list[tuple[dict[str, Any], bytes]] = []
    for key, alg, extra in entries:
        km = _key_management(alg)
        if km.direct and len(entries) > 1:
            raise ValueError(f"{alg} agrees on the CEK with one recipient; it cannot share it")
        jwk = _encryption_key(key, km, ce)
        header: dict[str, Any] = {"alg": alg}
        own = _caller_header(extra, "a recipient header")
        if jwk.kid is not None and "kid" not in own and "kid" not in prot and "kid" not in shared:
            header["kid"] = jwk.kid
        header.update(own)
        _no_overlap(prot, shared, header)
        cek, encrypted_key = km.wrap(jwk, ce, cek, {**prot, **shared, **header}, header)
        reuse = km.reuses_key
        wrapped.append((header, encrypted_key))
    if cek is None:  # pragma: no cover - every wrap returns a CEK
        raise ValueError("no CEK")

    segment = b64encode(dumps(prot))
    aad_text = b64encode(aad) if aad is not None else None
    full_aad = segment if aad_text is None else f"{segment}.{aad_text}"
    if zip is not None:
        data = _deflate(data)
    iv, ciphertext, tag = ce.encrypt(cek, data, full_aad.encode("ascii"), reuse=reuse)

    out: dict[str, Any] = {"protected": segment}
    if shared:
        out["unprotected"] = shared
    # RFC 7516 §7.2.1: `header` and `encrypted_key` are absent when empty.
    members = [
        {
            **({"header": header} if header else {}),
            **({"encrypted_key": b64encode(encrypted_key)} if encrypted_key else {}),
        }
        for header, encrypted_key in wrapped
    ]
    if flatten:
        out.update(members[0])
    else:
        out["recipients"] = members
    if aad_text is not None:
        out["aad"] = aad_text
    out["iv"] = b64encode(iv)
    out["ciphertext"] = b64encode(ciphertext)
    out["tag"] = b64encode(tag)
    return out
