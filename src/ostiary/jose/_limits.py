"""Default bounds on untrusted input; every public entry point lets the caller change them."""

from __future__ import annotations

from typing import Final

MAX_TOKEN_SIZE: Final = 256 * 1024
"""Largest serialized token or JSON object accepted, in bytes."""

MAX_DECOMPRESSED_SIZE: Final = 256 * 1024
"""Largest plaintext that `zip: DEF` may inflate to (a zip bomb stops here)."""

MAX_PBES2_COUNT: Final = 1_000_000
"""Largest PBES2 `p2c` accepted on decrypt: each unit is an HMAC the attacker makes us compute."""

MIN_PBES2_COUNT: Final = 1_000
"""Smallest PBES2 `p2c` accepted on decrypt (RFC 7518 §4.8.1.2 recommends at least 1000)."""

DEFAULT_PBES2_COUNT: Final = 600_000
"""`p2c` used when encrypting, after OWASP's guidance for PBKDF2-HMAC-SHA256."""
