"""The JOSE error hierarchy: every failure on untrusted input is a `JoseError`."""

from __future__ import annotations


class JoseError(Exception):
    """Root of every error `ostiary.jose` raises for bad input."""

    def __init__(self, message: str = "") -> None:
        super().__init__(message or self.default_message)

    default_message = "JOSE processing failed"


class MalformedToken(JoseError):
    """The token, header or serialization is not well formed."""

    default_message = "the token is malformed"


class TokenTooLarge(MalformedToken):
    """The input is larger than the configured limit."""

    default_message = "the token is larger than the configured limit"


class UnsupportedAlgorithm(JoseError):
    """The algorithm is unknown, not implemented, or not in the caller's allow-list."""

    default_message = "the algorithm is not allowed"


class InvalidHeader(MalformedToken):
    """A header parameter is missing, has the wrong type, or is refused (e.g. `crit`)."""

    default_message = "the header is invalid"


class InvalidKey(JoseError):
    """A key is malformed, too weak, or not usable for the requested operation."""

    default_message = "the key is invalid"


class KeyNotFound(JoseError):
    """No key in the key set matches the token."""

    default_message = "no matching key was found"


class BadSignature(JoseError):
    """The signature did not verify. Always the same message, whatever the cause."""

    default_message = "the signature is invalid"

    def __init__(self) -> None:
        super().__init__(self.default_message)


class DecryptionFailed(JoseError):
    """Decryption failed. Always the same message, so it cannot serve as an oracle."""

    default_message = "decryption failed"

    def __init__(self) -> None:
        super().__init__(self.default_message)


class InvalidClaims(JoseError):
    """The JWT claims set failed validation."""

    default_message = "the token's claims are invalid"

    def __init__(self, message: str = "", *, claim: str = "") -> None:
        super().__init__(message)
        self.claim = claim


class MissingClaim(InvalidClaims):
    """A required claim is absent."""

    default_message = "a required claim is missing"


class ExpiredToken(InvalidClaims):
    """The token's `exp` is in the past."""

    default_message = "the token has expired"


class ImmatureToken(InvalidClaims):
    """The token's `nbf` (or `iat`) is in the future."""

    default_message = "the token is not valid yet"


class InvalidAudience(InvalidClaims):
    """The `aud` claim does not name the expected audience."""

    default_message = "the token's audience is not accepted"


class InvalidIssuer(InvalidClaims):
    """The `iss` claim is not the expected issuer."""

    default_message = "the token's issuer is not accepted"


class InvalidType(InvalidHeader):
    """The `typ` header is not the expected type."""

    default_message = "the token's type is not accepted"
