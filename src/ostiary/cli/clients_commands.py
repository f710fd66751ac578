"""`ostiary clients create | list | show | delete | registration-token`: the applications
that ask for tokens, and the tokens that let applications register themselves."""

from __future__ import annotations

import argparse

from ostiary.oauth.models import AUTH_METHODS, ID_TOKEN_ALGORITHMS

from ._console import HelpFormatter
from ._durations import parse_duration
from ._server_options import add_config_option, deferred


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `clients` and its subcommands."""
    group = commands.add_parser(
        "clients",
        help="register, list and remove OAuth clients",
        description="Register, list and remove the OAuth clients (applications) of the "
        "server's database. Changes apply to a running server at once.",
    )
    group.set_defaults(handler=lambda _args: _show_help(group))
    sub = group.add_subparsers(title="commands", metavar="COMMAND")
    _add_create(sub)
    _add_list(sub)
    _add_show(sub)
    _add_delete(sub)
    _add_registration_token(sub)


def _show_help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _add_create(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "create",
        help="register a client; prints its client_id (and client_secret, once)",
        description="Register a client. A confidential client gets a generated client_secret, "
        "printed now and never again: only its hash is stored.",
        formatter_class=HelpFormatter,
        epilog="""examples:
  ostiary clients create --name "Notes web" --grant-types authorization_code,refresh_token \\
      --redirect-uris https://notes.example/callback --scopes "openid notes:read" --json
  ostiary clients create --name "CLI app" --public --grant-types authorization_code \\
      --redirect-uris http://127.0.0.1/callback --scopes "notes:read"
  ostiary clients create --name "Billing job" --grant-types client_credentials \\
      --scopes "invoices:write" --token-format opaque
  ostiary clients create --name "Signed" --grant-types client_credentials \\
      --auth-method private_key_jwt --jwks billing.pub.jwks --scopes read

Redirect URIs must be absolute, without a fragment, and https unless they point at a loopback
address (http://127.0.0.1, http://[::1]) for a native app.""",
    )
    parser.add_argument("--name", required=True, help="the name users see on the consent page")
    parser.add_argument(
        "--grant-types",
        default="authorization_code,refresh_token",
        metavar="LIST",
        help="comma-separated: authorization_code, refresh_token, client_credentials "
        "(default: authorization_code,refresh_token)",
    )
    parser.add_argument(
        "--redirect-uris",
        default="",
        metavar="URL[,URL]",
        help="comma-separated redirect URIs, matched exactly (needed for authorization_code)",
    )
    parser.add_argument(
        "--scopes", default="", metavar='"S T"', help="space-separated scopes the client may get"
    )
    parser.add_argument(
        "--public",
        action="store_true",
        help="a public client (browser or native app): no secret, PKCE only",
    )
    parser.add_argument(
        "--auth-method",
        choices=sorted(AUTH_METHODS),
        help="token endpoint authentication (default: client_secret_basic; none with --public)",
    )
    parser.add_argument(
        "--token-format",
        choices=("jwt", "opaque"),
        default="jwt",
        help="access tokens as RFC 9068 JWTs (default) or opaque reference tokens",
    )
    parser.add_argument(
        "--legacy-password-grant",
        action="store_true",
        help="also allow the password grant (legacy, discouraged by OAuth 2.1)",
    )
    parser.add_argument(
        "--jwks", metavar="FILE", help="public keys for private_key_jwt (JWK or JWK Set)"
    )
    parser.add_argument(
        "--id-token-alg",
        choices=ID_TOKEN_ALGORITHMS,
        default="RS256",
        help="OpenID Connect: how its ID tokens are signed (default RS256)",
    )
    parser.add_argument(
        "--userinfo-alg",
        choices=ID_TOKEN_ALGORITHMS,
        help="OpenID Connect: answer /userinfo as a JWT signed this way (default: JSON)",
    )
    parser.add_argument(
        "--pairwise",
        action="store_true",
        help="OpenID Connect: a pairwise sub per redirect host, not the user id",
    )
    parser.add_argument(
        "--post-logout-redirect-uris",
        default="",
        metavar="URL[,URL]",
        help="OpenID Connect: where /logout may send the user back to, matched exactly",
    )
    parser.add_argument(
        "--backchannel-logout-uri",
        metavar="URL",
        help="OpenID Connect: where logout tokens are posted when a login session ends",
    )
    parser.add_argument(
        "--backchannel-logout-session-required",
        action="store_true",
        help="OpenID Connect: the client needs sid in logout tokens (it always gets one)",
    )
    parser.add_argument(
        "--frontchannel-logout-uri",
        metavar="URL",
        help="OpenID Connect: the page loaded in an iframe when a login session ends at /logout",
    )
    parser.add_argument(
        "--frontchannel-logout-session-required",
        action="store_true",
        help="OpenID Connect: the client needs iss and sid on that page's URL (it always gets "
        "them)",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    add_config_option(parser)
    parser.set_defaults(handler=deferred("_clients", "create"))


def _add_registration_token(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "registration-token",
        help="print an initial access token for dynamic client registration",
        description="Print an initial access token (RFC 7591): whoever holds it may register "
        "clients at POST /register until it expires, with 'Authorization: Bearer TOKEN'. "
        "Nothing is stored: it is signed with a key derived from the key-encryption secret "
        "(OSTIARY_KEY_FILE), so it cannot be revoked before it expires; keep it short.",
        formatter_class=HelpFormatter,
        epilog="""examples:
  ostiary clients registration-token                 # valid for 1 hour
  ostiary clients registration-token --ttl 10m""",
    )
    parser.add_argument(
        "--ttl",
        type=parse_duration,
        default=3600,
        metavar="DURATION",
        help="how long the token lets clients register (default 1h)",
    )
    add_config_option(parser)
    parser.set_defaults(handler=deferred("_clients", "registration_token"))


def _add_list(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("list", help="list the registered clients")
    parser.add_argument("--json", action="store_true", help="print a JSON array")
    add_config_option(parser)
    parser.set_defaults(handler=deferred("_clients", "list_clients"))


def _add_show(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("show", help="show one client (never its secret)")
    parser.add_argument("client_id", metavar="CLIENT_ID")
    parser.add_argument("--json", action="store_true", help="print a JSON object")
    add_config_option(parser)
    parser.set_defaults(handler=deferred("_clients", "show"))


def _add_delete(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "delete",
        help="remove a client and everything issued to it",
        description="Remove a client. Its refresh tokens and codes go with it; a running "
        "server refuses them at once.",
    )
    parser.add_argument("client_id", metavar="CLIENT_ID")
    add_config_option(parser)
    parser.set_defaults(handler=deferred("_clients", "delete"))
