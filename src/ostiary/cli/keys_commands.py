"""`ostiary keys generate | thumbprint`: make keys and name them (`list | rotate`: the server's)."""

from __future__ import annotations

import argparse
import os
import sys

from ostiary.jose import JoseError, jws
from ostiary.jose.jwk import JWK, JWKSet

from ._console import HelpFormatter, fail, render_json
from ._keyfiles import load_key_file
from .signing_keys_commands import add_server_commands

_KEY_TYPES = ("EC", "RSA", "OKP", "oct")
# Key-management algorithms of JWE, by name prefix: the key type each one needs.
_ENCRYPTION_KEY_TYPES = (("RSA", "RSA"), ("ECDH-ES", "EC"), ("A", "oct"), ("dir", "oct"))


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `keys` and its subcommands."""
    group = commands.add_parser(
        "keys",
        help="generate keys, compute thumbprints, list and rotate the server's signing keys",
        description="Generate JSON Web Keys and compute their RFC 7638 thumbprints; list and "
        "rotate the signing keys of the server's database.",
    )
    group.set_defaults(handler=lambda _args: _show_help(group))
    sub = group.add_subparsers(title="commands", metavar="COMMAND")
    _add_generate(sub)
    _add_thumbprint(sub)
    add_server_commands(sub)


def _show_help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _add_generate(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "generate",
        help="generate a key (private JWK or PEM)",
        description="Generate a random key and print it as a private JWK (or PEM). With --out "
        "the key goes to a new file readable only by you (mode 0600) and the public JWK is "
        "printed instead. The kid defaults to the key's RFC 7638 thumbprint.",
        formatter_class=HelpFormatter,
        epilog="""examples:
  ostiary keys generate                          # EC P-256, for ES256
  ostiary keys generate --alg ES256 --out es256.jwk > es256.pub.jwk
  ostiary keys generate --kty RSA --size 3072 --alg PS256 --format pem --out rsa.pem
  ostiary keys generate --kty OKP --crv Ed25519
  ostiary keys generate --alg HS256              # a 256-bit HMAC secret as an oct JWK

--kty defaults to what --alg needs, else EC.""",
    )
    parser.add_argument("--kty", choices=_KEY_TYPES, help="key type (default: from --alg, or EC)")
    parser.add_argument(
        "--crv",
        help="curve: P-256, P-384, P-521, secp256k1 (EC); Ed25519, Ed448, X25519, X448 (OKP)",
    )
    parser.add_argument(
        "--size", type=int, metavar="BITS", help="RSA modulus or oct secret size in bits"
    )
    parser.add_argument("--alg", help="the one algorithm the key may be used with, e.g. ES256")
    parser.add_argument("--kid", help="key id (default: the RFC 7638 thumbprint)")
    parser.add_argument("--use", choices=("sig", "enc"), help="public key use")
    parser.add_argument(
        "--format", choices=("jwk", "pem"), default="jwk", help="output format (default jwk)"
    )
    parser.add_argument("--public", action="store_true", help="output only the public key")
    parser.add_argument(
        "--out", metavar="FILE", help="write the key to FILE (mode 0600); print the public JWK"
    )
    parser.add_argument("--force", action="store_true", help="let --out replace an existing file")
    parser.set_defaults(handler=_generate)


def _add_thumbprint(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "thumbprint",
        help="print a key's RFC 7638 thumbprint",
        description="Print the RFC 7638 thumbprint of a key (JWK, PEM or DER file), or of each "
        "key in a JWK Set, one per line after its kid.",
        formatter_class=HelpFormatter,
        epilog="""examples:
  ostiary keys thumbprint es256.jwk
  ostiary keys thumbprint --uri public.pem     # RFC 9278 urn:ietf:params:oauth:jwk-thumbprint:...
  curl -s https://issuer.example/jwks | ostiary keys thumbprint -""",
    )
    parser.add_argument("file", metavar="FILE", help="the key file ('-' for stdin)")
    parser.add_argument(
        "--hash", choices=("sha-256", "sha-384", "sha-512"), default="sha-256", help="hash"
    )
    parser.add_argument("--uri", action="store_true", help="print an RFC 9278 thumbprint URI")
    parser.set_defaults(handler=_thumbprint)


# -- handlers ------------------------------------------------------------------------------


def _key_type(alg: str | None) -> str:
    if alg is None:
        return "EC"
    impl = jws.SIGNATURE_ALGORITHMS.get(alg)
    if impl is not None:
        return impl.kty
    for prefix, kty in _ENCRYPTION_KEY_TYPES:
        if alg.startswith(prefix):
            return kty
    fail(f"cannot tell which key type {alg!r} needs; pass --kty")


def _curve(kty: str, crv: str | None, alg: str | None) -> str | None:
    if crv is not None or kty != "OKP" or alg is None:
        return crv
    if alg == "Ed448":
        return "Ed448"
    return "X25519" if alg.startswith("ECDH-ES") else None


def _generate(args: argparse.Namespace) -> int:
    kty = args.kty or _key_type(args.alg)
    if args.size is not None and kty in ("EC", "OKP"):
        fail(f"--size is for RSA and oct keys; {kty} keys take --crv")
    if args.crv is not None and kty in ("RSA", "oct"):
        fail(f"--crv is for EC and OKP keys; {kty} keys take --size")
    if kty == "oct" and args.format == "pem":
        fail("an oct (symmetric) key has no PEM form; use --format jwk")
    if kty == "oct" and args.public:
        fail("an oct (symmetric) key has no public part")
    try:
        key = JWK.generate(
            kty, crv=_curve(kty, args.crv, args.alg), size=args.size, alg=args.alg, use=args.use
        )
    except ValueError as exc:
        fail(str(exc))
    key = JWK.from_dict({**key.to_dict(private=True), "kid": args.kid or key.thumbprint()})
    if args.alg in jws.SIGNATURE_ALGORITHMS:
        _check_fits(key, args.alg)
    private = not args.public
    if args.out is None:
        print(_serialize(key, args.format, private=private), end="")
        return 0
    _write_private_file(args.out, _serialize(key, args.format, private=private), args.force)
    kind = "secret" if kty == "oct" else "private" if private else "public"
    print(f"ostiary: wrote the {kind} key to {args.out} (mode 0600)", file=sys.stderr)
    if kty != "oct":
        print(render_json(key.to_dict()))
    return 0


def _check_fits(key: JWK, alg: str) -> None:
    """Sign and verify once, so a key that cannot serve `alg` is refused now, not in use."""
    try:
        jws.verify(jws.sign(b"fit", key, alg=alg), key, algorithms=[alg])
    except JoseError as exc:
        fail(f"this key cannot serve {alg}: {exc}")


def _serialize(key: JWK, fmt: str, *, private: bool) -> str:
    if fmt == "pem":
        return key.to_pem(private=private).decode("ascii")
    return render_json(key.to_dict(private=private)) + "\n"


def _write_private_file(path: str, text: str, force: bool) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    if force:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            fail(f"cannot replace {path!r}: {exc.strerror or exc}")
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        fail(f"{path!r} already exists; pass --force to replace it")
    except OSError as exc:
        fail(f"cannot write {path!r}: {exc.strerror or exc}")
    if hasattr(os, "fchmod"):  # the umask may only take bits away; make it exactly 0600
        os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(text)


def _thumbprint(args: argparse.Namespace) -> int:
    keys = load_key_file(args.file)
    for key in keys if isinstance(keys, JWKSet) else (keys,):
        value = key.thumbprint_uri(args.hash) if args.uri else key.thumbprint(args.hash)
        if isinstance(keys, JWKSet):
            print(f"{render_json(key.kid)} {value}")
        else:
            print(value)
    return 0
