"""Where the commands get keys: JWK, JWK Set and PEM/DER files, or a secret from stdin or env.

A secret is never taken from the command line itself: it would land in shell history and in
every other user's `ps` listing.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from typing import Final

from ostiary.jose import JoseError, jws
from ostiary.jose.jwk import JWK, JWKSet

from ._console import fail, parse_json_object, read_input

# Signature algorithms a key may serve, by key type and curve, when the user names none.
# Chosen from the verifying key, never from the token: the token's `alg` is attacker data.
_ALGORITHMS_BY_KEY: Final[dict[tuple[str, str | None], tuple[str, ...]]] = {
    ("RSA", None): ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512"),
    ("EC", "P-256"): ("ES256",),
    ("EC", "P-384"): ("ES384",),
    ("EC", "P-521"): ("ES512",),
    ("EC", "secp256k1"): ("ES256K",),
    ("OKP", "Ed25519"): ("EdDSA", "Ed25519"),
    ("OKP", "Ed448"): ("EdDSA", "Ed448"),
    ("oct", None): ("HS256", "HS384", "HS512"),
}


def add_key_options(
    parser: argparse.ArgumentParser, *, jwks: bool, required: bool, purpose: str
) -> None:
    """`--key FILE`, optionally `--jwks FILE`, `--secret-stdin`, `--secret-env NAME`."""
    group = parser.add_argument_group("key (one of)")
    sources = group.add_mutually_exclusive_group(required=required)
    sources.add_argument(
        "--key",
        metavar="FILE",
        help=f"key to {purpose}: a JWK, JWK Set, or PEM/DER file ('-' for stdin)",
    )
    if jwks:
        sources.add_argument(
            "--jwks", metavar="FILE", help=f'JWK Set file ({{"keys": [...]}}) to {purpose}'
        )
    sources.add_argument(
        "--secret-stdin",
        action="store_true",
        help="read an HMAC secret from stdin (one trailing newline is dropped)",
    )
    sources.add_argument(
        "--secret-env", metavar="NAME", help="take the HMAC secret from environment variable NAME"
    )
    group.add_argument(
        "--key-password-env",
        metavar="NAME",
        help="environment variable holding the password of an encrypted PEM/DER key",
    )


def keys_from_args(args: argparse.Namespace) -> JWK | JWKSet | None:
    """The key or key set the options name, or None when none was given."""
    if args.key is not None:
        return load_key_file(args.key, password=_password(args))
    if getattr(args, "jwks", None) is not None:
        keys = load_key_file(args.jwks, password=_password(args))
        return keys if isinstance(keys, JWKSet) else JWKSet([keys])
    if args.secret_stdin:
        if _stdin_is_terminal():  # a person typing: do not echo the secret
            return _secret(os.fsencode(getpass.getpass("HMAC secret: ")), "the prompt")
        return _secret(_strip_newline(read_input("-", "secret")), "stdin")
    if args.secret_env is not None:
        value = os.environ.get(args.secret_env)
        if value is None:
            fail(f"environment variable {args.secret_env} is not set")
        return _secret(os.fsencode(value), f"${args.secret_env}")
    return None


def stdin_sources(args: argparse.Namespace) -> list[str]:
    """What the options read from stdin; at most one of them can have it."""
    named = [getattr(args, "key", None), getattr(args, "jwks", None)]
    return ["key"] * named.count("-") + (["secret"] if getattr(args, "secret_stdin", False) else [])


def load_key_file(path: str, *, password: bytes | None = None) -> JWK | JWKSet:
    """A JWK or JWK Set (JSON), or a PEM or DER key or certificate."""
    data = read_input(path, "key file")
    where = "stdin" if path == "-" else repr(path)
    head = data.lstrip()[:64]
    try:
        if head.startswith(b"{"):
            shape = parse_json_object(data, f"key file {where}")  # to tell a set from a key
            if "keys" in shape:
                return JWKSet.from_json(data)
            return JWK.from_json(data)
        if b"-----BEGIN" in head:
            return JWK.from_pem(data, password=password)
        if head.startswith(b"0"):  # 0x30: a DER SEQUENCE
            return JWK.from_der(data, password=password)
    except JoseError as exc:
        fail(f"the key file {where}: {exc}")
    if head.startswith((b"ssh-", b"ecdsa-", b"sk-")):
        fail(f"the key file {where} is an OpenSSH key; convert it to PEM (ssh-keygen -e -m PKCS8)")
    fail(f"the key file {where} is not a JWK, a JWK Set, or a PEM or DER key")


def signature_algorithms(keys: JWK | JWKSet) -> list[str]:
    """The signature algorithms the key (or any key of the set) may verify."""
    found: list[str] = []
    for key in keys if isinstance(keys, JWKSet) else (keys,):
        if key.use == "enc":
            continue
        if key.alg is not None:
            names: tuple[str, ...] = (key.alg,) if key.alg in jws.SIGNATURE_ALGORITHMS else ()
        else:
            crv = None if key.kty in ("RSA", "oct") else key.crv
            names = _ALGORITHMS_BY_KEY.get((key.kty, crv), ())
        found += [name for name in names if name not in found]
    if not found:
        fail("no signature algorithm fits this key; name one with --alg")
    return found


def split_algorithms(values: list[str] | None) -> list[str]:
    """`--alg ES256 --alg RS256` and `--alg ES256,RS256` alike."""
    return [name.strip() for value in values or () for name in value.split(",") if name.strip()]


def _password(args: argparse.Namespace) -> bytes | None:
    name = getattr(args, "key_password_env", None)
    if name is None:
        return None
    value = os.environ.get(name)
    if value is None:
        fail(f"environment variable {name} is not set")
    return os.fsencode(value)


def _secret(data: bytes, where: str) -> JWK:
    try:
        return JWK.from_secret(data)
    except JoseError as exc:
        fail(f"the secret from {where}: {exc}")


def _strip_newline(data: bytes) -> bytes:
    for ending in (b"\r\n", b"\n"):
        if data.endswith(ending):
            return data[: -len(ending)]
    return data


def _stdin_is_terminal() -> bool:
    isatty = getattr(sys.stdin, "isatty", None)
    return bool(isatty is not None and isatty())
