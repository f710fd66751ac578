"""`ostiary users create | list | delete`: the people who sign in to the server."""

from __future__ import annotations

import argparse

from ._console import HelpFormatter
from ._server_options import add_config_option, deferred


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `users` and its subcommands."""
    group = commands.add_parser(
        "users",
        help="create, list and remove users",
        description="Create, list and remove the users who sign in on the server's login "
        "page. Changes apply to a running server at once.",
    )
    group.set_defaults(handler=lambda _args: _show_help(group))
    sub = group.add_subparsers(title="commands", metavar="COMMAND")
    _add_create(sub)
    _add_list(sub)
    _add_delete(sub)


def _show_help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _add_create(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "create",
        allow_abbrev=False,  # `--password X` must not pass for `--password-stdin` plus junk
        help="create a user (the password from stdin or a prompt)",
        description="Create a user. The password is read from stdin with --password-stdin "
        "(one trailing newline is dropped), or asked for twice at a terminal without echo. "
        "There is no option that takes the password as an argument: it would land in your "
        "shell history and in `ps` for every user on the machine. Passwords are stored as "
        "Argon2id hashes.",
        formatter_class=HelpFormatter,
        epilog="""examples:
  ostiary users create --username alice                       # prompts twice
  printf '%s\\n' "$ALICE_PASSWORD" | ostiary users create --username alice --password-stdin""",
    )
    parser.add_argument("--username", required=True, help="the name typed on the login page")
    parser.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin"
    )
    parser.add_argument("--password", nargs="?", action=_NoPasswordArgument, help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help="print the new user as JSON")
    add_config_option(parser)
    parser.set_defaults(handler=deferred("_users", "create"))


def _add_list(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("list", help="list the users")
    parser.add_argument("--json", action="store_true", help="print a JSON array")
    add_config_option(parser)
    parser.set_defaults(handler=deferred("_users", "list_users"))


def _add_delete(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "delete",
        help="remove a user",
        description="Remove a user. Their sessions, codes, refresh tokens and consents go "
        "with them and introspection reports their access tokens inactive; a JWT access "
        "token an API checks on its own stays valid until it expires.",
    )
    parser.add_argument("username", metavar="USERNAME")
    add_config_option(parser)
    parser.set_defaults(handler=deferred("_users", "delete"))


class _NoPasswordArgument(argparse.Action):
    """`--password VALUE`: refused without repeating the value, with what to do instead."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        parser.error(
            "a password is never taken as an argument (it would stay in your shell history "
            "and show in ps): pipe it to --password-stdin, or run at a terminal to be asked"
        )
