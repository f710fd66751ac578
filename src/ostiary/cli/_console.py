"""What every command shares at the terminal: one-line errors, safe JSON, bounded input."""

from __future__ import annotations

import argparse
import json
import sys
import unicodedata
from typing import Any, Final, NoReturn

MAX_INPUT_SIZE: Final = 1024 * 1024
"""Largest file or stdin input read, in bytes (the JOSE library bounds tokens further)."""

# Unicode categories never shown raw: controls (ANSI escapes), format characters (bidi
# overrides that reorder what the reader sees), surrogates, private use, unassigned, and
# line/paragraph separators.
_HIDDEN: Final = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


class CommandError(Exception):
    """A failure the user can act on: printed as one line, exit status 1."""


def printable(text: str) -> str:
    """`text` with every invisible or terminal-controlling character escaped as `\\uXXXX`.

    Tokens and keys come from strangers; what they hold must not drive the terminal. The
    escapes are JSON escapes, so JSON text stays valid JSON.
    """
    if text.isascii() and text.isprintable():
        return text
    return "".join(_escape(ch) if unicodedata.category(ch) in _HIDDEN else ch for ch in text)


def _escape(ch: str) -> str:
    code = ord(ch)
    if code > 0xFFFF:  # JSON spells astral characters as a surrogate pair
        code -= 0x10000
        return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"
    return f"\\u{code:04x}"


def render_json(value: object, *, indent: int | None = 2) -> str:
    """JSON for people and programs alike: UTF-8 text, invisible characters escaped."""
    text = json.dumps(value, ensure_ascii=False, indent=indent)
    # json.dumps escapes "\n" inside strings, so every raw newline here is layout.
    return "\n".join(printable(line) for line in text.split("\n"))


def warn(message: str) -> None:
    """A note on stderr that does not change the exit status."""
    print(f"ostiary: warning: {printable(message)}", file=sys.stderr)


def fail(message: str) -> NoReturn:
    """Stop the command with a one-line error (exit status 1)."""
    raise CommandError(message)


def read_input(source: str, what: str, *, limit: int = MAX_INPUT_SIZE) -> bytes:
    """The bytes of a file, or of stdin when `source` is `-`, refusing more than `limit`."""
    if source == "-":
        stream = getattr(sys.stdin, "buffer", None)
        if stream is None:
            fail(f"cannot read the {what} from stdin")
        data: bytes = stream.read(limit + 1)
        where = "stdin"
    else:
        try:
            with open(source, "rb") as file:
                data = file.read(limit + 1)
        except OSError as exc:
            fail(f"cannot read the {what} {source!r}: {exc.strerror or exc}")
        where = repr(source)
    if len(data) > limit:
        fail(f"the {what} on {where} is larger than {limit} bytes")
    return data


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        names = [name for name, _ in pairs]
        duplicate = next(name for name in names if names.count(name) > 1)
        raise ValueError(f"member {duplicate!r} appears twice")
    return obj


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_STRICT = json.JSONDecoder(object_pairs_hook=_unique_members, parse_constant=_refuse_constant)


def parse_json_object(data: bytes | str, what: str) -> dict[str, Any]:
    """Parse strict JSON (no duplicate names, NaN or Infinity) that must be an object."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        value = _STRICT.decode(text.strip())
    except UnicodeDecodeError:
        fail(f"the {what} is not UTF-8 text")
    except json.JSONDecodeError as exc:
        fail(f"the {what} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")
    except ValueError as exc:
        fail(f"the {what} is not valid JSON: {exc}")
    except RecursionError:
        fail(f"the {what} is nested too deeply")
    if not isinstance(value, dict):
        fail(f"the {what} must be a JSON object, not {json_type(value)}")
    return value


def json_type(value: object) -> str:
    """The JSON name of a parsed value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


class HelpFormatter(argparse.HelpFormatter):
    """Wraps one-paragraph help text; keeps text with its own line breaks (examples) as is."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text:
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)
