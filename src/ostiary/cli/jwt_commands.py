"""`ostiary jwt encode | decode | verify`: issue, inspect and check JSON Web Tokens."""

from __future__ import annotations

import argparse
import time
from typing import Any

from ostiary.jose import InvalidAudience, JoseError, jws, jwt
from ostiary.jose.jwk import JWK

from ._console import (
    HelpFormatter,
    fail,
    parse_json_object,
    printable,
    read_input,
    render_json,
    warn,
)
from ._durations import parse_duration, parse_seconds, parse_timestamp
from ._keyfiles import (
    add_key_options,
    keys_from_args,
    signature_algorithms,
    split_algorithms,
    stdin_sources,
)
from ._token_view import clean_token, render_annotated, take_apart, time_notes


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `jwt` and its subcommands."""
    group = commands.add_parser(
        "jwt",
        help="issue, inspect and verify JSON Web Tokens",
        description="Issue, inspect and verify JSON Web Tokens (RFC 7519).",
    )
    group.set_defaults(handler=lambda _args: _show_help(group))
    sub = group.add_subparsers(title="commands", metavar="COMMAND")
    _add_encode(sub)
    _add_decode(sub)
    _add_verify(sub)


def _show_help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _add_now(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--now",
        type=parse_timestamp,
        metavar="SECONDS",
        help="act as if the time were SECONDS since 1970-01-01 UTC (default: the clock)",
    )


def _add_encode(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "encode",
        help="sign claims into a JWT",
        description="Sign a claims set into a compact JWT and print it.",
        formatter_class=HelpFormatter,
        epilog="""examples:
  ostiary keys generate --alg ES256 --out es256.jwk
  ostiary jwt encode --key es256.jwk --claims '{"sub": "u_123", "aud": "billing"}' --exp 15m
  echo '{"sub": "u_123"}' | ostiary jwt encode --key es256.jwk --exp 1h -
  printenv HS_SECRET | ostiary jwt encode --secret-stdin --alg HS256 --exp 5m

An 'iat' claim is added (unless the claims have one, or --no-iat); --exp, --nbf and
--header values replace what the claims or defaults say.""",
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--claims", metavar="JSON", help="the claims set as a JSON object")
    source.add_argument(
        "--claims-file", metavar="FILE", help="read the claims JSON from FILE ('-' for stdin)"
    )
    source.add_argument(
        "stdin", nargs="?", choices=["-"], metavar="-", help="read the claims JSON from stdin"
    )
    add_key_options(parser, jwks=False, required=True, purpose="sign with")
    parser.add_argument(
        "--alg", help="signature algorithm, e.g. ES256, RS256, EdDSA, HS256 (default: the key's)"
    )
    parser.add_argument(
        "--exp", type=parse_duration, metavar="DURATION", help="expire after DURATION (15m, 1h)"
    )
    parser.add_argument(
        "--nbf", type=parse_duration, metavar="DURATION", help="not valid until DURATION from now"
    )
    parser.add_argument("--no-iat", action="store_true", help="do not add an 'iat' claim")
    parser.add_argument(
        "--header",
        action="append",
        metavar="NAME=VALUE",
        default=[],
        help="add a protected header parameter with a string value (repeatable): kid=K, typ=at+jwt",
    )
    _add_now(parser)
    parser.set_defaults(handler=_encode)


def _add_decode(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "decode",
        help="show a JWT's header and claims (a terminal jwt.io)",
        description="Show a JWT's header and claims, what its times mean, and whether its "
        "signature verified. Without a key nothing is verified, and the output says so.",
        formatter_class=HelpFormatter,
        epilog="""examples:
  ostiary jwt decode eyJhbGciOi...
  pbpaste | ostiary jwt decode -
  ostiary jwt decode --jwks jwks.json "$TOKEN"
  ostiary jwt decode --json "$TOKEN" | jq .claims.sub

exit status: 0 when shown (expired or not); 1 when the token cannot be read, or when a
key was given and the signature did not verify.""",
    )
    parser.add_argument("token", metavar="TOKEN", help="the JWT ('-' reads it from stdin)")
    add_key_options(parser, jwks=True, required=False, purpose="verify the signature with")
    parser.add_argument(
        "--alg",
        action="append",
        metavar="ALG",
        help="algorithms to accept (repeatable); default: those the key is for",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead")
    _add_now(parser)
    parser.set_defaults(handler=_decode)


def _add_verify(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "verify",
        help="verify a JWT's signature and claims; print the claims",
        description="Verify a JWT as an API would: signature, algorithm allow-list, 'exp', "
        "'nbf', 'iat', and each expectation given. Prints the claims as JSON when valid.",
        formatter_class=HelpFormatter,
        epilog="""examples:
  ostiary jwt verify "$TOKEN" --jwks jwks.json --alg ES256 --audience billing
  ostiary jwt verify - --key public.pem --alg RS256 --alg PS256 --leeway 30 < token.txt

exit status: 0 and the claims on stdout when the token is valid; 1 and the reason on
stderr otherwise.""",
    )
    parser.add_argument("token", metavar="TOKEN", help="the JWT ('-' reads it from stdin)")
    add_key_options(parser, jwks=True, required=True, purpose="verify with")
    parser.add_argument(
        "--alg",
        action="append",
        metavar="ALG",
        required=True,
        help="an algorithm to accept (repeatable, or comma-separated): the allow-list",
    )
    parser.add_argument(
        "--audience", action="append", metavar="AUD", help="require 'aud' to name AUD"
    )
    parser.add_argument("--issuer", action="append", metavar="ISS", help="require 'iss' to be ISS")
    parser.add_argument("--subject", metavar="SUB", help="require 'sub' to be SUB")
    parser.add_argument("--typ", metavar="TYP", help="require the 'typ' header, e.g. at+jwt")
    parser.add_argument(
        "--require",
        action="append",
        metavar="CLAIM",
        default=[],
        help="require CLAIM to be present (repeatable), e.g. jti",
    )
    parser.add_argument(
        "--leeway",
        type=parse_seconds,
        default=0.0,
        metavar="SECONDS",
        help="clock skew to tolerate on exp, nbf and iat (default 0)",
    )
    _add_now(parser)
    parser.set_defaults(handler=_verify)


# -- handlers ------------------------------------------------------------------------------


def _read_token(args: argparse.Namespace) -> str:
    if args.token != "-":
        return clean_token(args.token)
    if stdin_sources(args):
        fail("stdin can carry the token or the key, not both")
    data = read_input("-", "token")
    try:
        return clean_token(data.decode("ascii"))
    except UnicodeDecodeError:
        fail("the token is not ASCII text, so it is not a JWT")


def _now(args: argparse.Namespace) -> float:
    return time.time() if args.now is None else float(args.now)


def _claims(args: argparse.Namespace) -> dict[str, Any]:
    if args.claims is not None:
        return parse_json_object(args.claims, "claims")
    source = args.claims_file if args.claims_file is not None else args.stdin
    if source is None:
        return {}
    if source == "-" and stdin_sources(args):
        fail("stdin can carry the claims or the key, not both")
    return parse_json_object(read_input(source, "claims file"), "claims")


def _headers(values: list[str]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for item in values:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name:
            fail(f"--header {item!r}: write it as NAME=VALUE")
        if name == "alg":
            fail("set the algorithm with --alg, not --header")
        headers[name] = value
    return headers


def _encode(args: argparse.Namespace) -> int:
    claims = _claims(args)
    headers = _headers(args.header)
    keys = keys_from_args(args)
    if keys is None:  # pragma: no cover - argparse requires a key option
        fail("pass a key: --key FILE, --secret-stdin or --secret-env NAME")
    alg = args.alg or (keys.alg if isinstance(keys, JWK) else None)
    if alg is None:
        fail("the key does not name its algorithm; pass --alg (e.g. --alg ES256)")
    now = int(_now(args))
    if not args.no_iat and "iat" not in claims:
        claims["iat"] = now
    if args.nbf is not None:
        claims["nbf"] = now + args.nbf
    if args.exp is not None:
        claims["exp"] = now + args.exp
    try:
        token = jwt.encode(claims, keys, alg=alg, headers=headers or None)
    except ValueError as exc:  # a claim of the wrong type, from the user's JSON
        fail(str(exc))
    if "exp" not in claims:
        warn("the token has no 'exp' claim, so verifiers will refuse it; add --exp 15m")
    print(token)
    return 0


def _decode(args: argparse.Namespace) -> int:
    token = take_apart(_read_token(args))
    keys = keys_from_args(args)
    alg = token.header.get("alg")
    if keys is None:
        verified = False
        detail = "no key given (pass --key FILE, --jwks FILE, --secret-stdin or --secret-env)"
        if alg == "none":
            detail = "the token is unsigned (alg 'none'); no verifier should accept it"
    else:
        algorithms = split_algorithms(args.alg) or signature_algorithms(keys)
        try:
            jws.verify(token.text, keys, algorithms=algorithms)
        except JoseError as exc:
            verified, detail = False, str(exc)
        else:
            verified, detail = True, f"{alg} with " + _key_name(token.header)
    notes = time_notes(token.claims, _now(args))
    if args.json:
        print(
            render_json(
                {
                    "header": token.header,
                    "claims": token.claims,
                    "signature": {"verified": verified, "detail": detail},
                    "times": {
                        note.claim: {
                            "utc": note.utc,
                            "seconds_from_now": note.seconds_from_now,
                            "note": note.text,
                        }
                        for note in notes
                    },
                }
            )
        )
    else:
        print("Header")
        print(render_json(token.header))
        print()
        print("Claims")
        print(render_annotated(token.claims, {note.claim: note.text for note in notes}))
        print()
        state = "verified" if verified else "NOT verified"
        print(f"Signature {state}: {printable(detail)}")
    return 0 if keys is None or verified else 1


def _key_name(header: dict[str, Any]) -> str:
    kid = header.get("kid")
    return f"key {printable(repr(kid))}" if isinstance(kid, str) else "the given key"


def _verify(args: argparse.Namespace) -> int:
    algorithms = split_algorithms(args.alg)
    if not algorithms:
        fail("--alg needs an algorithm name, e.g. --alg ES256")
    token = _read_token(args)
    keys = keys_from_args(args)
    if keys is None:
        fail("verify needs a key: pass --key FILE, --jwks FILE, --secret-stdin or --secret-env")
    audience = args.audience
    try:
        claims = jwt.decode(
            token,
            keys,
            algorithms=algorithms,
            audience=audience[0] if audience and len(audience) == 1 else audience,
            issuer=args.issuer[0] if args.issuer and len(args.issuer) == 1 else args.issuer,
            subject=args.subject,
            typ=args.typ,
            required=args.require,
            leeway=args.leeway,
            now=args.now,
        )
    except InvalidAudience as exc:
        hint = "" if audience else " (pass --audience)"
        fail(f"token rejected: {exc}{hint}")
    except JoseError as exc:
        fail(f"token rejected: {exc}")
    print(render_json(claims))
    return 0
