"""`ostiary users create | set | list | delete | consents | revoke-consent`: the people who
sign in to the server, their OpenID Connect claims, and what they let clients do."""

from __future__ import annotations

import argparse

from ._console import HelpFormatter
from ._server_options import add_config_option, deferred


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `users` and its subcommands."""
    group = commands.add_parser(
        "users",
        help="create, list and remove users; show and revoke their consents",
        description="Create, list and remove the users who sign in on the server's login "
        "page, and show or revoke what they approved on its consent page. Changes apply to "
        "a running server at once.",
    )
    group.set_defaults(handler=lambda _args: _show_help(group))
    sub = group.add_subparsers(title="commands", metavar="COMMAND")
    _add_create(sub)
    _add_set(sub)
    _add_list(sub)
    _add_delete(sub)
    _add_consents(sub)
    _add_revoke_consent(sub)
    _add_sign_out(sub)


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


def _add_set(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "set",
        help="set or remove a user's OpenID Connect claims (name, email, ...)",
        description="Set or remove the standard claims (OpenID Connect Core 5.1) a user's "
        "ID tokens and UserInfo answers carry, each released by its scope: profile (name, "
        "given_name, family_name, middle_name, nickname, preferred_username, profile, "
        "picture, website, gender, birthdate, zoneinfo, locale), email (email, "
        "email_verified), address (address.formatted, address.street_address, "
        "address.locality, address.region, address.postal_code, address.country), phone "
        "(phone_number, phone_number_verified). updated_at is set to now on every change.",
        formatter_class=HelpFormatter,
        epilog="""examples:
  ostiary users set --username alice --claim "name=Alice Liddell" --claim email=alice@example.com \
      --claim email_verified=true --claim address.country=GB
  ostiary users set --username alice --unset email --unset email_verified""",
    )
    parser.add_argument("--username", required=True, help="whose claims to change")
    parser.add_argument(
        "--claim",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set a claim (repeatable); *_verified take true or false",
    )
    parser.add_argument(
        "--unset", action="append", default=[], metavar="NAME", help="remove a claim (repeatable)"
    )
    parser.add_argument("--json", action="store_true", help="print the user's claims as JSON")
    add_config_option(parser)
    parser.set_defaults(handler=deferred("_users", "set_claims"))


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


def _add_consents(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "consents",
        help="list the clients a user approved",
        description="List the clients a user approved on the consent page, with the scopes "
        "approved and when they were last approved. The user is not asked again for those "
        "scopes at those clients.",
    )
    parser.add_argument("--username", required=True, help="whose consents to show")
    parser.add_argument("--json", action="store_true", help="print a JSON array")
    add_config_option(parser)
    parser.set_defaults(handler=deferred("_users", "list_consents"))


def _add_revoke_consent(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "revoke-consent",
        help="withdraw what a user let a client do",
        description="Forget what the user approved for the client, so the next sign-in "
        "there shows the consent page again, and revoke every token the client holds for "
        "the user: its refresh tokens stop working, introspection reports its access tokens "
        "inactive, and a code not yet redeemed is void. A JWT access token an API checks on "
        "its own stays valid until it expires.",
    )
    parser.add_argument("--username", required=True, help="the user who approved")
    parser.add_argument("--client-id", required=True, help="the client to withdraw from")
    add_config_option(parser)
    parser.set_defaults(handler=deferred("_users", "revoke_client_consent"))


def _add_sign_out(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "sign-out",
        help="end every sign-in session of a user",
        description="End every session the user has at the server's login page, in every "
        "browser: their next authorization request asks for the password again. Tokens "
        "already issued to clients are not touched (revoke-consent does that).",
    )
    parser.add_argument("--username", required=True, help="whose sessions to end")
    add_config_option(parser)
    parser.set_defaults(handler=deferred("_users", "sign_out"))


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
