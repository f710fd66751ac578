"""`ostiary keys list | rotate`: the server's signing keys, in its database."""

from __future__ import annotations

import argparse

from ._console import HelpFormatter
from ._durations import parse_duration
from ._server_options import add_config_option, deferred

_SIGNING_ALGORITHMS = ("ES256", "RS256", "EdDSA")


def add_server_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `list` and `rotate` to the `keys` group."""
    _add_list(sub)
    _add_rotate(sub)


def _add_list(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "list",
        help="list the server's signing keys and what each one does now",
        description="List the server's signing keys, newest first, with their state: 'next' "
        "(published, signs later), 'signing', 'retired' (still published until every token it "
        "signed has expired) or 'expired' (no longer published).",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON array")
    add_config_option(parser)
    parser.set_defaults(handler=deferred("_signing_keys", "list_keys"))


def _add_rotate(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "rotate",
        help="publish a new signing key that takes over after an overlap",
        description="Create a new signing key and publish it in the JWKS at once. It starts "
        "signing after the overlap (default OSTIARY_KEY_ROTATION_OVERLAP, 24 hours), so APIs "
        "that cache the JWKS know it before they see a token it signed; the key it replaces "
        "stays published until every token it signed has expired. Each algorithm (ES256, "
        "RS256, EdDSA: access tokens use OSTIARY_SIGNING_ALG, ID tokens what each client "
        "registered) has its own key; --alg says which one to rotate. A running server picks "
        "the change up within OSTIARY_KEY_REFRESH_INTERVAL seconds, without a restart.",
        formatter_class=HelpFormatter,
        epilog="""examples:
  ostiary keys rotate                        # the usual, planned rotation
  ostiary keys rotate --alg RS256            # rotate the RS256 key (ID tokens by default)
  ostiary keys rotate --overlap 0            # a key leaked: sign with a new one now

--overlap 0 means APIs holding a cached JWKS refuse new tokens until they fetch it again.""",
    )
    parser.add_argument(
        "--alg", choices=_SIGNING_ALGORITHMS, help="the algorithm to rotate (default: settings)"
    )
    parser.add_argument(
        "--overlap",
        type=parse_duration,
        metavar="DURATION",
        help="how long the new key is published before it signs (e.g. 0, 30m, 24h)",
    )
    parser.add_argument("--json", action="store_true", help="print the new key as JSON")
    add_config_option(parser)
    parser.set_defaults(handler=deferred("_signing_keys", "rotate_key"))
