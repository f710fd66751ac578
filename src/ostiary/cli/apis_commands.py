"""`ostiary apis create | list | delete`: the APIs (RFC 8707 resources) tokens are issued for."""

from __future__ import annotations

import argparse

from ._console import HelpFormatter
from ._server_options import add_config_option, deferred


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `apis` and its subcommands."""
    group = commands.add_parser(
        "apis",
        help="register, list and remove the APIs tokens are issued for",
        description="Register, list and remove the APIs (resource servers) of the server's "
        "database. A token request naming one with resource=URI (RFC 8707) gets a token with "
        "that audience and only that API's scopes; an unknown resource is refused.",
    )
    group.set_defaults(handler=lambda _args: _show_help(group))
    sub = group.add_subparsers(title="commands", metavar="COMMAND")

    create = sub.add_parser(
        "create",
        help="register an API",
        description="Register an API. Its identifier is the audience of the tokens issued "
        "for it; a client gets one of its scopes only when the client was created with it.",
        formatter_class=HelpFormatter,
        epilog="""example:
  ostiary apis create --identifier https://notes.example --scopes "notes:read notes:write"
  ostiary clients create --name "Notes job" --grant-types client_credentials \\
      --scopes "notes:read" --json""",
    )
    create.add_argument(
        "--identifier",
        required=True,
        metavar="URI",
        help="an absolute URI without a fragment; the token audience",
    )
    create.add_argument(
        "--scopes", default="", metavar='"S T"', help="space-separated scopes the API defines"
    )
    create.add_argument("--json", action="store_true", help="print the result as JSON")
    add_config_option(create)
    create.set_defaults(handler=deferred("_apis", "create"))

    listing = sub.add_parser("list", help="list the registered APIs")
    listing.add_argument("--json", action="store_true", help="print a JSON array")
    add_config_option(listing)
    listing.set_defaults(handler=deferred("_apis", "list_apis"))

    delete = sub.add_parser(
        "delete",
        help="remove an API",
        description="Remove an API: new token requests for it are refused with invalid_target. "
        "Tokens already issued stay valid until they expire.",
    )
    delete.add_argument("identifier", metavar="URI")
    add_config_option(delete)
    delete.set_defaults(handler=deferred("_apis", "delete"))


def _show_help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2
